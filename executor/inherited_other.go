//go:build !linux

package executor

// SealInheritedFDs does nothing outside Linux, where commands run without the exec shim.
func SealInheritedFDs() error { return nil }

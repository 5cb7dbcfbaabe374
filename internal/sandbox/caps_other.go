//go:build !linux

package sandbox

// RunAsMissing: a uid per run is Linux-only.
func RunAsMissing() []string { return []string{"Linux"} }

// UIDsMapped has no user namespaces to ask outside Linux.
func UIDsMapped(lo, hi int) bool { return true }

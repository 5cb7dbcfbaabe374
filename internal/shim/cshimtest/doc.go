// Package cshimtest checks the C shim's parsers (cmd/port-runner-shim/c) against the Go
// shim's, through cgo: the same untrusted bytes, the same answer. Tests only.
package cshimtest

//go:build !linux

package shim

import "syscall"

// Main is Linux-only: the guarantees it gives (a child subreaper, Pdeathsig, a non-dumpable
// process) have no portable equivalent. Elsewhere the executor runs commands without a shim.
func Main(args []string) int {
	_, _ = syscall.Write(syscall.Stderr, []byte("port-runner-shim: Linux only\n"))
	return 127
}

// SetNonDumpable has no equivalent outside Linux.
func SetNonDumpable() error { return syscall.ENOSYS }

// Args is not needed outside Linux, where the shim does not run.
func Args() ([]string, error) { return nil, syscall.ENOSYS }

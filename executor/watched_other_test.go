//go:build !linux

package executor

import "testing"

// watchedProcess is a process a test watches by its pid number, which may be reused: there
// is no pidfd outside Linux (see the Linux version).
type watchedProcess struct{ pid int }

func watchProcess(_ testing.TB, pid int) watchedProcess { return watchedProcess{pid: pid} }

func (p watchedProcess) gone() bool { return processGone(p.pid) }

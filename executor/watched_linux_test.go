package executor

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// watchedProcess is a process a test watches through a pidfd, opened as soon as the test
// reads its pid (where it surely lives then, whatever becomes of it is seen). Its pid number
// alone would not do: pids are reused (pid_max is 32768 on many machines, and another test's
// fork bomb held by a pids cgroup burns thousands a second), so a process that died early
// could look alive under its reused number, or one that died look alive still.
type watchedProcess struct {
	pid int
	fd  int // -1: no process had the pid when it was opened
}

func watchProcess(t testing.TB, pid int) watchedProcess {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return watchedProcess{pid: pid, fd: -1}
	}
	if err != nil {
		t.Fatalf("pidfd of %d: %v", pid, err)
	}
	t.Cleanup(func() { _ = unix.Close(fd) })
	return watchedProcess{pid: pid, fd: fd}
}

// gone says whether the process has exited; a zombie has (orphans are reparented to pid 1,
// which in a container may never reap them).
func (p watchedProcess) gone() bool { return p.fd < 0 || exitedWithin(p.fd, 0) }

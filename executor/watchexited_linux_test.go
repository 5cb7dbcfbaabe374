package executor

import (
	"context"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// watch is a process pid watched from now (watchExit), as the tests start one.
func watch(pid, pidfd int) *process {
	return &process{pid: pid, exited: watchExit(pid, pidfd)}
}

// exitedChild forks a command that exits at once and waits, without reaping it, until it has:
// its pid and the pidfd the kernel made with it, as spawn has them when watch starts.
func exitedChild(t testing.TB) (pid, pidfd int) {
	t.Helper()
	pidfd = -1
	pid, err := syscall.ForkExec("/bin/true", []string{"true"}, &syscall.ProcAttr{Sys: &syscall.SysProcAttr{PidFD: &pidfd}})
	if err != nil {
		t.Fatal(err)
	}
	var info unix.Siginfo
	for err = unix.EINTR; err == unix.EINTR; {
		err = unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return pid, pidfd
}

// TestWatchAnExitedProcessWithoutThePoller: a command that has already exited when its watch
// starts (most quiet runs by the time the watching goroutine runs) is seen at once, without
// registering its pidfd with the runtime's poller: no fcntl, no epoll_ctl to add it and none
// to remove it, no os.File. What it would allocate for the poller is what tells here.
func TestWatchAnExitedProcessWithoutThePoller(t *testing.T) {
	const runs = 20
	type child struct{ pid, pidfd int }
	children := make([]child, 0, runs+1) // AllocsPerRun calls the function once more
	for range runs + 1 {
		pid, pidfd := exitedChild(t)
		children = append(children, child{pid, pidfd})
	}
	unwatched := make([]child, 0, runs+1)
	allocs := testing.AllocsPerRun(runs, func() {
		c := children[0]
		children = children[1:]
		p := watch(c.pid, c.pidfd)
		<-p.exited
		unwatched = append(unwatched, c) // preallocated: no allocation of its own
	})
	for _, c := range unwatched {
		p := &process{pid: c.pid}
		if ws, err := p.reapPid(); err != nil || ws.ExitStatus() != 0 {
			t.Errorf("pid %d reaped: %v %v, want exit status 0", c.pid, ws, err)
		}
	}
	// The process, its exited channel and the watching goroutine's closure; the poller's
	// os.File would be three more.
	if allocs > 3 {
		t.Errorf("watching an exited process allocated %.0f times, want at most 3 (no os.File for the poller)", allocs)
	}
}

// A command that closes its output and goes on is not taken for ended: its end is watched
// for once its output has ended before it, and its status is its own, with the shim or
// without.
func TestOutputEndsBeforeTheCommand(t *testing.T) {
	for name, prefix := range map[string][]string{"no shim": nil, "shim": {tinyShim}} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			res, out := run(t, context.Background(), Spec{Argv: []string{"sh", "-c", "echo before; exec >&- 2>&-; sleep 0.3; exit 3"},
				Shim: prefix, Timeout: time.Minute})
			if res.ExitCode != 3 || out != "before\n" {
				t.Fatalf("got %+v, output %q; want exit code 3 after %q", res, out, "before\n")
			}
			if el := time.Since(start); el < 300*time.Millisecond {
				t.Errorf("ended after %v, before the command's 300ms", el)
			}
		})
	}
}

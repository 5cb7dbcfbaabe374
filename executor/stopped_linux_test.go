package executor

import (
	"context"
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// stoppingRun is a run whose command may stop (SIGSTOP) its shim or itself: Run in a
// goroutine, the shim's pid from OnStart.
type stoppingRun struct {
	done chan Result
	out  *notifyWriter
	shim atomic.Int64
}

// startStopping starts spec; the cleanup makes sure nothing of it is left even when Run
// never returns (the bug these tests catch): it resumes and kills the shim's group then.
func startStopping(t *testing.T, ctx context.Context, spec Spec) *stoppingRun {
	t.Helper()
	r := &stoppingRun{done: make(chan Result, 1), out: newNotifyWriter()}
	spec.OnStart = func(pid int) { r.shim.Store(int64(pid)) }
	go func() { r.done <- Run(ctx, spec, r.out) }()
	t.Cleanup(func() {
		select {
		case res := <-r.done:
			r.done <- res
		default:
			if pid := int(r.shim.Load()); pid > 1 {
				_ = syscall.Kill(-pid, syscall.SIGCONT)
				_ = syscall.Kill(-pid, syscall.SIGKILL)
			}
			<-r.done
		}
	})
	return r
}

// commandPid is the pid the command printed first (its $$, which names its process group).
func (r *stoppingRun) commandPid(t *testing.T) int {
	t.Helper()
	select {
	case l := <-r.out.lines:
		pid, err := strconv.Atoi(l)
		if err != nil || pid <= 1 {
			t.Fatalf("want the command's pid first, got %q", l)
		}
		return pid
	case <-time.After(10 * time.Second):
		t.Fatal("no output from the command")
		return 0
	}
}

// waitShimStopped waits until the command has stopped its shim.
func (r *stoppingRun) waitShimStopped(t *testing.T) {
	t.Helper()
	waitFor(t, 10*time.Second, "the command to stop its shim", func() bool {
		return processState(int(r.shim.Load())) == 'T'
	})
}

// result is Run's result, which must come within limit.
func (r *stoppingRun) result(t *testing.T, limit time.Duration) Result {
	t.Helper()
	select {
	case res := <-r.done:
		r.done <- res
		return res
	case <-time.After(limit):
		t.Fatalf("Run has not returned %v on (output %q)", limit, r.out.String())
		return Result{}
	}
}

// processState is the state letter in /proc/PID/stat (T: stopped), 0 when it cannot be read.
func processState(pid int) byte {
	if pid <= 1 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if err != nil || i < 0 || i+2 >= len(s) {
		return 0
	}
	return s[i+2]
}

// groupGone says whether no live process is left in process group pgid (zombies are gone:
// orphans reparented to pid 1, which in a container may never reap them).
func groupGone(pgid int) bool {
	if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if err != nil || i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:]) // state, ppid, pgrp, ...
		if len(f) > 2 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" && f[0] != "X" {
			return false
		}
	}
	return true
}

// noRunGoroutines waits until no goroutine of Run's is left (parked on a stopped shim, say).
func noRunGoroutines(t *testing.T) {
	t.Helper()
	var left string
	waitFor(t, 10*time.Second, "Run's goroutines to end", func() bool {
		buf := make([]byte, 1<<20)
		left = ""
		for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			for _, fn := range []string{"executor.Run(", "executor.supervise(", "executor.watch.", "executor.copyOutput(", "executor.(*process)."} {
				if strings.Contains(g, fn) {
					left += g + "\n\n"
					break
				}
			}
		}
		return left == ""
	})
}

// ended checks that the run ended with label and left nothing behind: no process of the
// command's group, no goroutine.
func (r *stoppingRun) ended(t *testing.T, label string, pgid int, limit time.Duration) {
	t.Helper()
	if res := r.result(t, limit); res.Success || res.Label != label {
		t.Errorf("got %+v, want %q (output %q)", res, label, r.out.String())
	}
	waitFor(t, 10*time.Second, "the command's process group to be gone", func() bool { return groupGone(pgid) })
	noRunGoroutines(t)
}

// A command of the agent's uid (no runAs) can stop its shim, which then passes nothing on:
// a timeout must still end the run, by SIGTERM well before a long grace.
func TestACommandThatStopsItsShimEndsOnTimeout(t *testing.T) {
	eachShim(t, func(t *testing.T, prefix []string) {
		for _, target := range []string{"$PPID", "-$PPID"} { // the shim, and its group
			t.Run(target, func(t *testing.T) {
				r := startStopping(t, context.Background(), Spec{
					Argv: []string{"sh", "-c", "echo $$; kill -STOP " + target + "; sleep 60"},
					Shim: prefix, Timeout: 2 * time.Second, KillGrace: time.Hour,
				})
				pgid := r.commandPid(t)
				r.waitShimStopped(t)
				r.ended(t, "timed out after 2s", pgid, 20*time.Second)
			})
		}
	})
}

// Cancelled (the agent's shutdown, say), a command that stopped its shim and has no timeout
// ends too.
func TestACommandThatStopsItsShimEndsOnCancel(t *testing.T) {
	eachShim(t, func(t *testing.T, prefix []string) {
		ctx, cancel := context.WithCancelCause(context.Background())
		defer cancel(nil)
		r := startStopping(t, ctx, Spec{
			Argv: []string{"sh", "-c", "echo $$; kill -STOP $PPID; sleep 60"}, Shim: prefix, KillGrace: time.Hour,
		})
		pgid := r.commandPid(t)
		r.waitShimStopped(t)
		cancel(ErrShutdown)
		r.ended(t, CancelLabel(ErrShutdown), pgid, 20*time.Second)
	})
}

// A command that stops its shim again as soon as it runs, and ignores SIGTERM, still ends
// soon after the grace: the shim itself is killed if it does not end the command.
func TestACommandThatKeepsStoppingItsShimEndsAfterTheGrace(t *testing.T) {
	eachShim(t, func(t *testing.T, prefix []string) {
		r := startStopping(t, context.Background(), Spec{
			Argv: []string{"sh", "-c", "trap '' TERM; echo $$; while :; do kill -STOP $PPID; done"},
			Shim: prefix, Timeout: 300 * time.Millisecond, KillGrace: 300 * time.Millisecond,
		})
		pgid := r.commandPid(t)
		r.ended(t, "timed out after 300ms", pgid, 20*time.Second)
	})
}

// A command that stops itself (its own group: kill 0), with or without a shim, and ignores
// SIGTERM or not, ends on its timeout.
func TestACommandThatStopsItselfEndsOnTimeout(t *testing.T) {
	withAndWithoutShim(t, func(t *testing.T, prefix []string) {
		for _, script := range []string{"echo $$; kill -STOP 0", "trap '' TERM; echo $$; kill -STOP $$"} {
			r := startStopping(t, context.Background(), Spec{
				Argv: []string{"sh", "-c", script}, Shim: prefix,
				Timeout: 300 * time.Millisecond, KillGrace: 300 * time.Millisecond,
			})
			pgid := r.commandPid(t)
			r.ended(t, "timed out after 300ms", pgid, 20*time.Second)
		}
	})
}

// A stopped shim enforces no fence either: once the lease is lost, the kill resumes it, so
// a command that stopped its shim (and has no timeout) does not outlive the lease; one that
// stops it again as soon as it runs has it killed once its fence has passed.
func TestACommandThatStopsItsShimDiesWithItsLease(t *testing.T) {
	eachRenewal(t, func(t *testing.T, shared bool) {
		eachShim(t, func(t *testing.T, prefix []string) {
			for _, stop := range []string{"kill -STOP $PPID; sleep 60", "while :; do kill -STOP $PPID; done"} {
				var held atomic.Bool
				held.Store(true)
				r := startStopping(t, context.Background(), Spec{
					Argv: []string{"sh", "-c", "trap '' TERM; echo $$; " + stop}, Shim: prefix,
					Fence: 500 * time.Millisecond, Held: held.Load, Renewals: sharedRenewals(t, shared, 500*time.Millisecond),
				})
				pgid := r.commandPid(t)
				r.waitShimStopped(t)
				held.Store(false)
				r.ended(t, "killed by signal killed", pgid, 20*time.Second)
			}
		})
	})
}

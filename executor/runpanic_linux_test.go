package executor

import (
	"context"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// newTestReaper is a Reaper that never sweeps (nothing runs it): it only tracks what Run
// registers, and its fork lock.
func newTestReaper() *Reaper {
	return &Reaper{started: map[int]uint64{}, killed: map[int]bool{}, kick: make(chan struct{}, 1)}
}

// newChildren fails the test for each child of the agent not in before (running or a zombie),
// and kills and reaps it: not for the next test.
func newChildren(t *testing.T, before []int) {
	t.Helper()
	for _, pid := range childrenOf(os.Getpid()) {
		if !slices.Contains(before, pid) {
			t.Errorf("process %d the run started is still the agent's child (running or unreaped) once Run returned", pid)
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			_, _ = syscall.Wait4(pid, nil, 0, nil)
		}
	}
}

// openTickets fails the test if the Reaper still counts a process of Run's as started.
func openTickets(t *testing.T, r *Reaper) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.started) != 0 {
		t.Errorf("reaper tickets left open: %v", r.started)
	}
}

// TestAPanicWhileStartingFreesTheForkLock: a panic of Run's own between its process's fork and
// its registration with the Reaper, which holds its fork lock meanwhile, lets the lock go
// (held, the next sweep would wait for it for good, and every later start behind that sweep),
// and the process it forked is ended, reaped and its ticket closed. The command (without a gate,
// the shim starts it at once) had started: the label says so.
func TestAPanicWhileStartingFreesTheForkLock(t *testing.T) {
	eachWay(t, func(t *testing.T, prefix []string) {
		reaper := newTestReaper()
		before := childrenOf(os.Getpid())
		spec := Spec{Argv: []string{"sleep", "60"}, Shim: prefix, Reaper: reaper, panicAt: "forked"}
		res, out := run(t, context.Background(), spec)
		if res.Success || res.ExitCode != -1 || !strings.HasPrefix(res.Label, "internal error: injected at forked") {
			t.Errorf("%+v (%q); want internal error: injected at forked", res, out)
		}
		if !reaper.forks.TryLock() {
			t.Error("the Reaper's fork lock is still held once Run returned")
		} else {
			reaper.forks.Unlock()
		}
		newChildren(t, before)
		openTickets(t, reaper)
	})
}

// TestAbandonEndsWhatAPanicInFinishLeft: Run defers abandon, so a panic in finish before its
// process is reaped (here in its reap) leaves abandon to end and reap it, and one after it
// (or in what comes before reaped: Run's own work, conf.label) leaves abandon to close its
// Reaper ticket: once, however often abandon is called.
func TestAbandonEndsWhatAPanicInFinishLeft(t *testing.T) {
	for _, where := range []string{"in its reap", "after finish"} {
		t.Run(where, func(t *testing.T) {
			reaper := newTestReaper()
			before := childrenOf(os.Getpid())
			devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer devNull.Close()
			reaper.starting()
			p, err := spawn("/bin/sleep", []string{"sleep", "60"}, Spec{}, prepared{env: os.Environ()}, childFD(devNull.Fd()), nil, false)
			if err != nil {
				reaper.register(0)
				t.Fatal(err)
			}
			p.reaper = reaper.register(p.pid)
			defer p.release()
			reaps := 0
			p.reap = func() (syscall.WaitStatus, error) {
				reaps++
				if where == "in its reap" && reaps == 1 {
					panic("reap's own bug")
				}
				return p.reapPid()
			}
			p.kill()
			func() {
				defer func() {
					if r := recover(); r != nil && where == "after finish" {
						t.Errorf("finish panicked: %v", r)
					}
				}()
				p.finish()
			}()
			p.abandon(Spec{}, "", &confined{})
			p.abandon(Spec{}, "", &confined{})
			newChildren(t, before)
			openTickets(t, reaper)
			if want := map[string]int{"in its reap": 2, "after finish": 1}[where]; reaps != want {
				t.Errorf("the process was reaped %d times; want %d", reaps, want)
			}
		})
	}
}

// outputAfterReturn is a Run's output: it tells whether it was still being written once Run
// returned. Its first write waits until Run has returned (the bug: its copy not waited for) or
// is seen waiting for the copy in drain.
type outputAfterReturn struct {
	writing  chan struct{} // closed as the first write starts
	wrote    chan struct{} // closed as the first write ends
	returned chan struct{} // closed by the test once Run returned
	once     sync.Once
	late     atomic.Bool // written after Run returned
	neither  atomic.Bool // the first write saw neither before its deadline
}

func newOutputAfterReturn() *outputAfterReturn {
	return &outputAfterReturn{writing: make(chan struct{}), wrote: make(chan struct{}), returned: make(chan struct{})}
}

func (w *outputAfterReturn) Write(b []byte) (int, error) {
	first := false
	w.once.Do(func() { first = true })
	if !first {
		if closed(w.returned) {
			w.late.Store(true)
		}
		return len(b), nil
	}
	defer close(w.wrote)
	close(w.writing)
	deadline := time.Now().Add(30 * time.Second)
	buf := make([]byte, 1<<20)
	for {
		if closed(w.returned) {
			w.late.Store(true)
			return len(b), nil
		}
		if strings.Contains(string(buf[:runtime.Stack(buf, true)]), "executor.drain(") {
			return len(b), nil
		}
		if time.Now().After(deadline) {
			w.neither.Store(true)
			return len(b), nil
		}
		time.Sleep(time.Millisecond)
	}
}

// TestAPanicWhileSupervisingWaitsForTheOutput: a panic while Run supervises its command (here
// Spec.Held's, which Run asks on its own goroutine where no Spec.Renewals renews the lease)
// ends the run only once the copy of its output is over: out is never written after Run
// returned (its copy, a goroutine of Run's, is waited for).
func TestAPanicWhileSupervisingWaitsForTheOutput(t *testing.T) {
	eachWay(t, func(t *testing.T, prefix []string) {
		reaper := newTestReaper()
		before := childrenOf(os.Getpid())
		w := newOutputAfterReturn()
		spec := Spec{Argv: []string{"sh", "-c", "echo x; exec sleep 60"}, Shim: prefix, Reaper: reaper,
			Fence: 2 * time.Second, Held: func() bool {
				select {
				case <-w.writing:
				case <-time.After(30 * time.Second):
				}
				panic("Held's own bug")
			}}
		res := Run(context.Background(), spec, w)
		close(w.returned)
		select {
		case <-w.wrote:
		case <-time.After(time.Minute):
			t.Fatal("the output's first write never ended")
		}
		if res.Success || res.ExitCode != -1 || !strings.HasPrefix(res.Label, "internal error: Held's own bug") {
			t.Errorf("%+v; want internal error: Held's own bug", res)
		}
		if w.late.Load() {
			t.Error("the run's output was still being written once Run returned")
		}
		if w.neither.Load() {
			t.Error("the output's write saw neither Run return nor wait for it in drain")
		}
		newChildren(t, before)
		openTickets(t, reaper)
	})
}

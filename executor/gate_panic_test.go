//go:build linux

package executor

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestAPanicInTheGateOrOnStartLeavesNoProcess: Run recovers a panic of its caller's Gate or
// OnStart as a Result ("could not start: internal error: ...", but "internal error: ..." where
// the command had started), and what it had started by then (a shim waiting for its go, and
// the C one's fork; without a shim, the command itself, OnStart coming after its fork) is
// ended and reaped, and its Reaper ticket closed: no child of the agent is left, zombie or not,
// and a gated command never starts.
func TestAPanicInTheGateOrOnStartLeavesNoProcess(t *testing.T) {
	eachWay(t, func(t *testing.T, prefix []string) {
		for _, where := range []string{"Gate", "OnStart"} {
			t.Run(where, func(t *testing.T) {
				marker := filepath.Join(t.TempDir(), "ran")
				reaper := newTestReaper()
				var ours []int // the agent's children the run started
				var ps []watchedProcess
				seen := func(pids ...int) {
					for _, pid := range pids {
						ps = append(ps, watchProcess(t, pid))
					}
				}
				t.Cleanup(func() { // what a failure left: not for the next test
					for _, pid := range ours {
						_ = syscall.Kill(-pid, syscall.SIGKILL)
						_, _ = syscall.Wait4(pid, nil, 0, nil)
					}
				})
				spec := Spec{Argv: []string{"sh", "-c", `: > "$1"; exec sleep 60`, "sh", marker}, Shim: prefix, Reaper: reaper,
					Gate: func() error {
						readied := readied(t, prefix)
						seen(readied...)
						if len(readied) > 0 {
							ours = append(ours, readied[0])
						}
						if where == "Gate" {
							panic("the gate's own bug")
						}
						return nil
					},
					OnStart: func(pid int) {
						if !slices.Contains(ours, pid) { // without a shim: the command, forked after the gate
							seen(pid)
							ours = append(ours, pid)
						}
						panic("OnStart's own bug")
					}}
				res, out := run(t, context.Background(), spec)
				want := "could not start: internal error: " // the command never started
				if prefix == nil && where == "OnStart" {
					want = "internal error: " // forked before OnStart
				}
				if res.Success || res.ExitCode != -1 || !strings.HasPrefix(res.Label, want) {
					t.Errorf("%+v (%q); want %s...", res, out, want)
				}
				children := childrenOf(os.Getpid())
				for _, pid := range ours {
					if slices.Contains(children, pid) {
						t.Errorf("process %d the run started is still the agent's child (running or unreaped) once Run returned", pid)
					}
				}
				for _, p := range ps {
					if !p.gone() {
						t.Errorf("process %d of the run still runs once Run returned", p.pid)
					}
				}
				openTickets(t, reaper)
				if prefix != nil && exists(marker) {
					t.Error("a gated command started though its run panicked before the go")
				}
			})
		}
	})
}

// TestAbandonLeavesAFinishedProcessAlone: Run defers abandon on every path, so once finish
// has reaped the process (every Run that did not panic) abandon must not kill or reap it
// again: its pid may be another process's by then (see also
// TestAbandonEndsWhatAPanicInFinishLeft).
func TestAbandonLeavesAFinishedProcessAlone(t *testing.T) {
	reaps := 0
	p := &process{reap: func() (syscall.WaitStatus, error) { reaps++; return 0, nil }} // pid 0: signals none
	if res := p.finish(); !res.Success {
		t.Fatalf("finish: %+v", res)
	}
	p.abandon(Spec{}, "", &confined{})
	if reaps != 1 {
		t.Errorf("the process was reaped %d times; want once, by finish", reaps)
	}
}

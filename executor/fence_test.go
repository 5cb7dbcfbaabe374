package executor

import (
	"context"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// withAndWithoutShim runs f with each shim, and with none (the executor enforces the fence).
func withAndWithoutShim(t *testing.T, f func(t *testing.T, prefix []string)) {
	eachShim(t, f)
	t.Run("none", func(t *testing.T) { f(t, nil) })
}

// TestFenceKeepsAHeldCommand: while the lease holds, renewals keep the command alive past
// many fences, and it ends as it would have.
func TestFenceKeepsAHeldCommand(t *testing.T) {
	withAndWithoutShim(t, func(t *testing.T, prefix []string) {
		res, out := run(t, context.Background(), Spec{
			Argv: []string{"sh", "-c", "sleep 2; echo done"}, Shim: prefix,
			Fence: 400 * time.Millisecond, Held: func() bool { return true },
		})
		if !res.Success || out != "done\n" {
			t.Fatalf("a held command: %+v, output %q; want it to finish", res, out)
		}
	})
}

// TestFenceKillsTheCommandWhenTheLeaseIsLost: once Held says no, renewals stop and the
// command's tree (an escapee included) is killed within the fence, though it ignores
// SIGTERM and nothing cancelled it: the shim (or, without one, the executor) enforces it.
func TestFenceKillsTheCommandWhenTheLeaseIsLost(t *testing.T) {
	withAndWithoutShim(t, func(t *testing.T, prefix []string) {
		var held atomic.Bool
		held.Store(true)
		w := newNotifyWriter()
		done := make(chan Result, 1)
		go func() {
			done <- Run(context.Background(), Spec{
				Argv: []string{"sh", "-c", "trap '' TERM; " + escapees + "; sleep 60"}, Shim: prefix,
				Fence: 500 * time.Millisecond, Held: held.Load,
			}, w)
		}()
		waitFor(t, 20*time.Second, "the command's pids", func() bool { return strings.Contains(w.String(), "\n") })
		ps := pids(t, strings.TrimSpace(w.String()))
		held.Store(false)
		select {
		case res := <-done:
			if res.Success || res.Label != "killed by signal killed" {
				t.Errorf("fenced command: %+v, want killed by signal killed", res)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the command outlived its lease by 30s (fence 500ms)")
		}
		if prefix != nil { // without a shim an escapee outlives the group (README "Isolation")
			waitAllGone(t, "after the fence", ps)
		}
	})
}

// TestHelperFrozenAgent is not a real test: a fake agent that runs a command under the shim
// named by EXECUTOR_TEST_FENCE_SHIM with a fence of 1s, always holding the lease, and prints
// the command's pid; the test then freezes it.
func TestHelperFrozenAgent(t *testing.T) {
	prefix := os.Getenv("EXECUTOR_TEST_FENCE_SHIM")
	if prefix == "" {
		t.Skip("helper process only")
	}
	Run(context.Background(), Spec{
		Argv: []string{"sh", "-c", "echo $$; exec sleep 60"}, Shim: strings.Fields(prefix),
		Fence: time.Second, Held: func() bool { return true },
	}, os.Stdout)
	os.Exit(0)
}

// TestFenceKillsTheCommandsOfAFrozenAgent: an agent stopped by SIGSTOP (a long GC pause, a
// frozen VM) cannot renew, and cannot act: its shim kills the command on its own.
func TestFenceKillsTheCommandsOfAFrozenAgent(t *testing.T) {
	eachShim(t, func(t *testing.T, prefix []string) {
		agent, line := startFakeAgent(t, "TestHelperFrozenAgent", "EXECUTOR_TEST_FENCE_SHIM="+strings.Join(prefix, " "))
		ps := pids(t, line)
		if err := agent.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = agent.Process.Signal(syscall.SIGCONT) })
		waitAllGone(t, "while the agent is frozen", ps) // 10s: the command sleeps 60s
	})
}

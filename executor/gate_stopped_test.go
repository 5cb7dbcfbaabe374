//go:build linux

package executor

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// TestAGatedRunWhoseWaitingForkIsStoppedStillEnds: the C shim's fork waits for its go set up
// to the command's exec, in a process group of its own, for as long as the start mark takes.
// A command of the agent's uid (no runAs) can SIGSTOP it meanwhile, as it can a shim
// (stopped_linux_test.go): the run must still end at its timeout, not hang with its shim
// waiting for an exec that never comes.
func TestAGatedRunWhoseWaitingForkIsStoppedStillEnds(t *testing.T) {
	if cShim == "" {
		t.Skip("needs the C shim")
	}
	prefix := []string{cShim}
	var fork int
	spec := Spec{Argv: []string{"sleep", "60"}, Shim: prefix, Timeout: time.Second, KillGrace: time.Second,
		Gate: func() error {
			ps := readied(t, prefix)
			fork = ps[1]
			_ = syscall.Kill(fork, syscall.SIGSTOP) // another run's command, say
			waitFor(t, 10*time.Second, "the fork to stop", func() bool { return processState(fork) == 'T' })
			return nil
		}}
	r := startStopping(t, context.Background(), spec)
	t.Cleanup(func() { _ = syscall.Kill(fork, syscall.SIGKILL) }) // if Run hangs
	res := r.result(t, 30*time.Second)
	if res.Success {
		t.Errorf("%+v: want the run ended at its timeout", res)
	}
}

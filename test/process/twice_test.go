//go:build linux

package process_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/port-runner/port-runner/test/harness"
)

// A signed message written twice (a producer's retry, a replay within
// security.maxMessageAge) runs once per group: the copy is skipped as a duplicate, at no
// Port request, after the replica that ran the run restarted, and after the partition went
// to a replica that never saw the run (the run ids of a partition travel in its commit).
func TestMessageWrittenTwiceRunsOnce(t *testing.T) {
	f := newGroupFixture(t, 2)
	cfg := f.config("all", f.actions(0))
	stop := func(p *harness.Process) {
		t.Helper()
		p.Signal(t, syscall.SIGTERM)
		if !p.Wait(30 * time.Second) {
			t.Fatalf("%s still running 30s after SIGTERM", p.Name)
		}
		p.WantExit0(t)
	}
	// once runs id's message on partition 0, then its copy after change, and checks that the
	// copy cost no Port lookup (the first message may: a new group looks its first ones up).
	once := func(id string, change func()) {
		t.Helper()
		f.env.Emu.RegisterRun(id, "rerun_action")
		msg := f.env.Sign(t, harness.RunMessage(id, "rerun_action"))
		f.produceCopy(id, msg, 0)
		f.env.WaitClosed(t, id)
		f.env.WaitCommittedToEnd(t, 60*time.Second)
		change()
		before := f.lookups(id)
		f.produceCopy(id, msg, 0)
		f.env.WaitCommittedToEnd(t, 60*time.Second) // the copy was handled
		if n := f.lookups(id) - before; n != 0 {
			t.Errorf("%s: its copy was looked up in Port %d times, want 0: the commit says it ran", id, n)
		}
	}

	a := f.start("A", cfg)
	var b *harness.Process
	once("r_twice_restart", func() { // A restarts (as B)
		stop(a)
		b = f.start("B", cfg)
	})
	once("r_twice_handover", func() { // B's partitions go to C
		f.start("C", cfg)
		f.waitMembers(2, 60*time.Second)
		stop(b)
		f.waitMembers(1, 60*time.Second)
	})

	ids := []string{"r_twice_restart", "r_twice_handover"}
	f.closedEach(ids)
	execs := f.record.executions()
	for _, id := range ids {
		if n := len(execs[id]); n != 1 {
			t.Errorf("%s: executed %d times, want once", id, n)
		}
	}
}

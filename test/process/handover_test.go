//go:build linux

package process_test

import (
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/port-runner/port-runner/test/harness"
)

// longRun is how long the long runs of these tests last: longer than the 30s a run could
// outlive its partition's move before leases (kafka.revokeTimeout was 20s).
const longRun = 32

// A replica joins (a scale-up, a rollout's surge pod) while runs longer than 30s run on
// every partition: it takes partitions at once, and each run goes on where it started, is
// executed once and closed once, and is not cancelled for its partition's move. New runs
// on the moved partitions run on the newcomer meanwhile, and the group's commit passes the
// handed-over runs once they are decided.
func TestReplicaJoinsWhileLongRunsRun(t *testing.T) {
	const parts = 4
	f := newGroupFixture(t, parts)
	cfg := f.config("all", f.actions(longRun)+`
executor: {maxConcurrent: 8}
`)
	f.start("A", cfg)
	f.start("B", cfg)
	f.waitMembers(2, 60*time.Second)
	ids, _ := f.runsOnEveryPartition("join", 2*parts)
	f.ps.WaitFor("every run to start", 60*time.Second, func() bool { return f.record.started(ids) == len(ids) })

	// The scale-up: a third replica joins and takes partitions while the runs go on.
	f.start("C", cfg)
	f.waitMembers(3, 60*time.Second)
	joined := time.Now()
	// Every run goes on through the join (a run that ended now was cut short by it).
	running := f.record.running(ids)
	for _, id := range ids {
		if !slices.Contains(running, id) {
			r, _ := f.env.Emu.Run(id)
			t.Errorf("%s ended while the third replica joined: %s %q", id, r.Status, r.StatusLabel)
		}
	}
	// Runs produced after the join, one on every partition, are not held up by the long ones.
	quick, produced := f.quickRuns("join")
	f.closedWithin(quick, produced, 10*time.Second)

	f.ranOnceUncut(ids)
	// Its commit passes each handed-over run once the new owner learned its end from Port.
	f.env.WaitCommittedToEnd(t, 3*time.Minute)
	t.Logf("committed to the end %s after the join", time.Since(joined).Round(time.Second))
	for _, id := range ids {
		t.Logf("%s: %d Port lookup(s)", id, f.lookups(id))
	}
}

// A draining replica (SIGTERM: a rolling update) with runs longer than 30s and
// executor.shutdownTimeout 5m leaves the group at once: new runs on every partition close
// within 10s of being produced, while its own runs go on to their end under their leases,
// are closed once by it, and it exits 0.
func TestDrainHandsOverAtOnce(t *testing.T) {
	const parts = 4
	f := newGroupFixture(t, parts)
	cfg := f.config("all", f.actions(longRun)+`
executor: {maxConcurrent: 8, shutdownTimeout: 5m}
`)
	a := f.start("A", cfg)
	f.start("B", cfg)
	f.waitMembers(2, 60*time.Second)
	long, _ := f.runsOnEveryPartition("drain", 2*parts)
	f.ps.WaitFor("every long run to start", 60*time.Second, func() bool { return f.record.started(long) == len(long) })

	a.Signal(t, syscall.SIGTERM)
	// The new runs: one on every partition, as quick as a command gets.
	quick, produced := f.quickRuns("drain")
	f.closedWithin(quick, produced, 10*time.Second)
	if running := f.record.running(long); len(running) == 0 {
		t.Errorf("the long runs all ended before the quick ones closed: the test proves nothing")
	}

	runs := f.env.WaitAllClosed(t, long, 3*longRun*time.Second)
	for i, r := range runs {
		if r.Status != "SUCCESS" {
			t.Errorf("%s: %s %q, want SUCCESS: a drain of 5m lets a run of %ds end", long[i], r.Status, r.StatusLabel, longRun)
		}
	}
	f.drainedOnce(a, long)
}

// drainedOnce checks the runs a drained replica a held: each closed once (closedEach) after
// one execution, and a exits 0 soon after the last one closed.
func (f *groupFixture) drainedOnce(a *harness.Process, ids []string) {
	f.t.Helper()
	f.closedEach(ids)
	for _, id := range ids {
		if ex := f.record.executions()[id]; len(ex) != 1 {
			f.t.Errorf("%s: %d executions, want 1", id, len(ex))
		}
	}
	if !a.Wait(30 * time.Second) {
		f.t.Fatalf("A still running 30s after its last run closed")
	}
	a.WantExit0(f.t)
}

// A second SIGTERM during a drain cancels the running commands at once: their runs are
// closed as cancelled, and the replica exits 0, long before executor.shutdownTimeout.
func TestSecondSignalCancelsTheDrain(t *testing.T) {
	f := newGroupFixture(t, 1)
	a := f.start("A", f.config("A", f.actions(300)+"executor: {shutdownTimeout: 5m}\n"))
	f.waitMembers(1, 60*time.Second)
	ids, _ := f.runsOnEveryPartition("second", 2)
	f.ps.WaitFor("every run to start", 60*time.Second, func() bool { return f.record.started(ids) == len(ids) })

	a.Signal(t, syscall.SIGTERM)
	f.ps.WaitFor("A to leave the group", 60*time.Second, func() bool {
		state, assigned := f.members()
		return state == "Empty" && len(assigned) == 0
	})
	signalled := time.Now()
	a.Signal(t, syscall.SIGTERM)
	for i, r := range f.env.WaitAllClosed(t, ids, 60*time.Second) {
		if r.Status != "FAILURE" || r.StatusLabel != "cancelled: agent shutting down" || r.Terminations != 1 || r.RejectedTerminations != 0 {
			t.Errorf("%s: %s %q, %d terminations, %d refused; want FAILURE cancelled: agent shutting down, once",
				ids[i], r.Status, r.StatusLabel, r.Terminations, r.RejectedTerminations)
		}
	}
	if !a.Wait(60 * time.Second) {
		t.Fatal("A still running 60s after the second SIGTERM")
	}
	t.Logf("A exited %s after the second SIGTERM", time.Since(signalled).Round(time.Millisecond))
	a.WantExit0(t)
	// (No closedEach: the agent closes a cancelled run once its command ended, and the
	// record sees the rest of the tree die only within its 5ms poll.)
}

// A draining replica frozen (SIGSTOP: a long GC pause, a starved or suspended VM) for
// twice its commands' shim fence, well within its drain, lets its runs go on to their end:
// once it has left the group its runs are its own under their leases until their bound, so
// a pause of it threatens no run and must not cut one short. (An agent frozen past its
// lease's end still has its commands killed then: executor's
// TestALastingLeaseOutlivesAFrozenAgentUntilItsEnd.)
func TestFrozenDrainLetsItsRunsEnd(t *testing.T) {
	const lastingLine = "the run's command goes on until its lease ends, whatever becomes of this replica"
	const parts = 2
	f := newGroupFixture(t, parts)
	a := f.start("A", f.config("A", f.actions(longRun)+"executor: {maxConcurrent: 4, shutdownTimeout: 5m}\n"))
	f.waitMembers(1, 60*time.Second)
	ids, _ := f.runsOnEveryPartition("frozen", 2*parts)
	f.ps.WaitFor("every run to start", 60*time.Second, func() bool { return f.record.started(ids) == len(ids) })

	a.Signal(t, syscall.SIGTERM)
	f.ps.WaitFor("A to leave the group", 60*time.Second, func() bool {
		state, assigned := f.members()
		return state == "Empty" && len(assigned) == 0
	})
	// Every command's shim has heard that its run's lease lasts until the drain's end.
	f.ps.WaitFor("A to tell each command's shim its lease lasts", 30*time.Second, func() bool {
		return strings.Count(a.Log(), lastingLine) == len(ids)
	})
	a.Signal(t, syscall.SIGSTOP)
	thawed := false
	t.Cleanup(func() { // a test that fails while A is frozen must not leave it stopped
		if !thawed {
			a.Signal(t, syscall.SIGCONT)
		}
	})
	// The freeze is the scenario, not a wait for a state: twice the shim's fence at the
	// default session timeout (3/8 of a 10s fence), whose renewals A cannot send meanwhile.
	const freeze = 2 * 3750 * time.Millisecond
	time.Sleep(freeze)
	a.Signal(t, syscall.SIGCONT)
	thawed = true
	if running := f.record.running(ids); len(running) != len(ids) {
		t.Errorf("after A's freeze of %s in its drain, %d of its %d runs still run (%v), want all", freeze, len(running), len(ids), running)
	}

	runs := f.env.WaitAllClosed(t, ids, 3*longRun*time.Second)
	for i, r := range runs {
		if r.Status != "SUCCESS" {
			t.Errorf("%s: %s %q, want SUCCESS: a freeze of %s in a drain of 5m lets a run of %ds end", ids[i], r.Status, r.StatusLabel, freeze, longRun)
		}
	}
	f.drainedOnce(a, ids)
}

//go:build linux

package process_test

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/port-runner/port-runner/test/harness"
)

// The member that goes silent runs its first executions this long: long past the session
// timeout, so every one of them is still running when its partitions move. The session
// timeout is the agent's default, not the broker's smallest (6s): the fence (2/3 of it)
// is what a member must confirm its membership within, and its commands' shims must hear
// from it within 3/8 of it; under 6s, a loaded CI machine (load 20-30 on 2 cores) kept the
// member that stayed from doing so, and its shims rightly killed its own runs.
const (
	silentRun      = 40
	sessionTimeout = 15 * time.Second // the fence is 10s
)

// A member frozen past the session timeout (SIGSTOP: a long GC pause, a frozen VM) while
// its runs go on, with both onInterrupted settings: its commands are dead before the other
// member acts on their runs (their shims kill them), no two executions of a run overlap,
// Port never has a run's termination before its last execution ended, and each run is
// terminated once: the frozen member, once it thaws, closes none of the runs it lost.
func TestFrozenMemberNeverDoublesARun(t *testing.T) {
	f := newGroupFixture(t, 4)
	cfg := f.config("all", silentOverlay(f, ""))
	a := f.start("A", cfg)
	f.start("B", cfg)
	silence(t, f, a, func() { a.Signal(t, syscall.SIGSTOP) }, func() { a.Signal(t, syscall.SIGCONT) })
}

// A member cut off from the brokers (a TCP proxy the test controls holds every byte, as a
// network partition does) past the session timeout while its runs go on, with both
// onInterrupted settings: the same as for a frozen member; the cut-off one stops its
// commands itself once it cannot confirm its membership.
func TestCutOffMemberNeverDoublesARun(t *testing.T) {
	f := newGroupFixture(t, 4)
	proxy := harness.NewKafkaProxy(t, f.env.Broker.Brokers)
	a := f.start("A", f.config("A", silentOverlay(f, fmt.Sprintf("brokers: [%q], ", proxy.Brokers()[0]))))
	f.start("B", f.config("B", silentOverlay(f, "")))
	silence(t, f, a, proxy.Cut, proxy.Restore)
}

// silentOverlay is the config of these tests; kafka has more of the kafka section.
func silentOverlay(f *groupFixture, kafka string) string {
	return f.actions(silentRun) + fmt.Sprintf(`
kafka: {%ssessionTimeout: %s}
executor: {maxConcurrent: 8}
`, kafka, sessionTimeout)
}

// silence runs the runs on A and B, silences A (start) until B holds every partition, lets
// it speak again (end), and checks every run.
func silence(t *testing.T, f *groupFixture, a *harness.Process, start, end func()) {
	f.waitMembers(2, 60*time.Second)
	ids, _ := f.runsOnEveryPartition("silent", 8)
	f.ps.WaitFor("every run to start", 60*time.Second, func() bool { return f.record.started(ids) == len(ids) })
	most := mostRunsOfAMember(f, ids)

	start()
	spoke := false
	t.Cleanup(func() { // a test that fails while A is silent must not leave it stopped
		if !spoke {
			end()
		}
	})
	silenced := time.Now()
	f.waitMembers(1, 60*time.Second)
	t.Logf("B holds every partition %s after A went silent", time.Since(silenced).Round(time.Millisecond))
	// A's session has ended, long past its commands' fence: they are dead, their runs' 40s
	// notwithstanding, and only B's still run.
	f.ps.WaitFor(fmt.Sprintf("A's commands to be dead: at most %d running, B's", most), 10*time.Second, func() bool {
		return len(f.record.running(ids)) <= most
	})
	// B decides A's runs (after the fence) while A is still silent: A's commands are dead by
	// then, and B never waits for A to come back.
	f.ps.WaitFor("the runs A held to be decided by B", 60*time.Second, func() bool {
		running := f.record.running(ids)
		for _, id := range ids {
			if r, _ := f.env.Emu.Run(id); !harness.Ended(r) && !slices.Contains(running, id) {
				return false
			}
		}
		return !anyOverlapYet(f, ids)
	})
	end()
	spoke = true
	runs := f.env.WaitAllClosed(t, ids, 3*silentRun*time.Second)
	f.closedEach(ids)

	// What A held was decided by B: interrupted (fail), or run again (rerun).
	execs := f.record.executions()
	interrupted, rerun := 0, 0
	for i, r := range runs {
		id := ids[i]
		switch {
		case strings.HasPrefix(r.StatusLabel, "interrupted"):
			interrupted++
			if r.Action != "fail_action" {
				t.Errorf("%s of %s closed as %q: onInterrupted is rerun", id, r.Action, r.StatusLabel)
			}
		case len(execs[id]) > 1:
			rerun++
			if r.Action != "rerun_action" || r.Status != "SUCCESS" {
				t.Errorf("%s of %s run again, then %s %q", id, r.Action, r.Status, r.StatusLabel)
			}
		case r.Status != "SUCCESS":
			t.Errorf("%s: %s %q: a run of B's, or one A's silence cut short, must end SUCCESS or interrupted", id, r.Status, r.StatusLabel)
		}
	}
	t.Logf("runs A held: %d closed as interrupted (fail), %d run again (rerun)", interrupted, rerun)
	if interrupted == 0 || rerun == 0 {
		t.Errorf("want runs of A's closed as interrupted and run again, got %d and %d: the test proves nothing", interrupted, rerun)
	}
}

// mostRunsOfAMember is how many of ids (run i on partition i) the member with the most of
// them holds now.
func mostRunsOfAMember(f *groupFixture, ids []string) int {
	_, assigned := f.members()
	most := 0
	for _, ps := range assigned {
		n := 0
		for i := range ids {
			if slices.Contains(ps, int32(i%f.parts)) {
				n++
			}
		}
		most = max(most, n)
	}
	return most
}

// anyOverlapYet says whether some run has two executions at once: the record's view now.
func anyOverlapYet(f *groupFixture, ids []string) bool {
	execs := f.record.executions()
	for _, id := range ids {
		ex := execs[id]
		for i := 1; i < len(ex); i++ {
			if ex[i-1].overlaps(ex[i]) {
				f.t.Errorf("%s: execution %d started while execution %d still ran", id, i, i-1)
				return true
			}
		}
	}
	return false
}

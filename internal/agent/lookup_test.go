package agent_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/test/harness"
)

// TestLookupFailuresAreRetried: an earlier owner started runs and never finished them, and
// Port refuses the first lookups of them (403s: the agent's credentials, nobody's fault of
// the run's). The runs are not left for a redelivery that never comes while the partition
// stays here: the lookup is retried, each run is decided (rerun, or closed as interrupted)
// and closed once, and the commit reaches the end of the partition, with no restart.
func TestLookupFailuresAreRetried(t *testing.T) {
	h := harness.New(t, 1)
	cfg, rec := onInterruptedConfig(t, h)
	h.NewRun(t, "r_interrupted", "fail_action")
	h.NewRun(t, "r_rerun", "rerun_action")
	h.CommitAs(t, 0, 0, "port-runner/1 s=0,1")
	// The first Port requests about runs are the two lookups: each is refused twice.
	const refused = 4
	h.Emu.FailNext(refused, 403)

	stop := h.Start(t, cfg).Stop
	if r := h.WaitClosed(t, "r_interrupted"); r.Status != "FAILURE" || r.Terminations != 1 ||
		r.StatusLabel != "interrupted: the agent running it stopped" {
		t.Errorf("r_interrupted: %s %q, %d terminations; want one FAILURE interrupted", r.Status, r.StatusLabel, r.Terminations)
	}
	if r := h.WaitClosed(t, "r_rerun"); r.Status != "SUCCESS" || r.Terminations != 1 {
		t.Errorf("r_rerun: %s %q, %d terminations; want one SUCCESS", r.Status, r.StatusLabel, r.Terminations)
	}
	h.WaitCommittedToEnd(t, 30*time.Second) // before the agent stops: it commits its last runs
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	gets := map[int]int{}
	for _, rq := range h.Emu.Requests() {
		if rq.Method == "GET" && strings.HasPrefix(rq.Path, "/v1/actions/runs/") {
			gets[rq.Status]++
		}
	}
	if gets[403] != refused || gets[200] != 2 {
		t.Errorf("lookups by status %v, want %d refused then one 200 per run", gets, refused)
	}
	if got := rec.Executed(t); strings.Join(got, " ") != "r_rerun" {
		t.Errorf("executed %q, want r_rerun only", got)
	}
}

// TestLookupEndsAtHandover: a lookup Port does not answer (an outage: every run request
// 503) is retried while the partition is this agent's, and ends when a revoke begins: the
// run was not taken here, so the new owner gets it with the partition, at once.
func TestLookupEndsAtHandover(t *testing.T) {
	h := harness.New(t, 2)
	cfg := h.Config(t, harness.Actions(`
  act: {command: ["true"], onInterrupted: rerun}
`))
	var ids []string
	for i := range 8 { // 2 x executor.maxConcurrent: all of them are polled at once
		id := fmt.Sprintf("r_lookup_%d", i)
		ids = append(ids, id)
		h.NewRun(t, id, "act")
	}
	// An earlier owner started every one of them, whichever partition it is on.
	if waiting := h.Uncommitted(t); len(waiting) != 2 {
		t.Fatalf("runs on %d partition(s) %v: the test needs runs on both", len(waiting), waiting)
	}
	for p := range int32(2) {
		h.CommitAs(t, p, 0, "port-runner/1 s=0,1,2,3,4,5,6,7")
	}
	h.Emu.FailNext(1<<30, 503)

	a := h.Start(t, cfg, harness.Named("A"))
	looked := func() int {
		seen := map[string]bool{}
		for _, rq := range h.Emu.Requests() {
			if rq.Method == "GET" && strings.HasPrefix(rq.Path, "/v1/actions/runs/") {
				seen[rq.Path] = true
			}
		}
		return len(seen)
	}
	waitcond.For(t, "every run's lookup to be refused", 30*time.Second, func() bool { return looked() == len(ids) })

	b := h.Start(t, cfg, harness.Named("B"))
	waitcond.For(t, "the second agent to get a partition", 60*time.Second, func() bool {
		return b.Logs.FilterMessage("partitions assigned").Len() > 0
	})
	if a.Logs.FilterMessageSnippet("partitions handed over").Len() == 0 {
		t.Error("the first agent logged no handover")
	}
	h.Emu.FailNext(0, 0)
	for _, id := range ids {
		if r := h.WaitClosed(t, id); r.Status != "SUCCESS" || r.Terminations != 1 {
			t.Errorf("%s: %s %q, %d terminations", id, r.Status, r.StatusLabel, r.Terminations)
		}
	}
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
}

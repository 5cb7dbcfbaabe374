package agent_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/port-runner/port-runner/internal/agent"
	"github.com/port-runner/port-runner/internal/waitcond"
)

// TestLookupFailuresAreRetried: an earlier owner started runs and never finished them, and
// Port refuses the first lookups of them (403s: the agent's credentials, nobody's fault of
// the run's). The runs are not left for a redelivery that never comes while the partition
// stays here: the lookup is retried, each run is decided (rerun, or closed as interrupted)
// and closed once, and the commit reaches the end of the partition, with no restart.
func TestLookupFailuresAreRetried(t *testing.T) {
	h := newHarness(t, 1)
	record := filepath.Join(t.TempDir(), "executed")
	script := writeScript(t, `echo "$PORT_RUN_ID" >> "$1"`)
	cfg := h.config(t, fmt.Sprintf(`
  fail_action: {command: [%[1]q, %[2]q], onInterrupted: fail}
  rerun_action: {command: [%[1]q, %[2]q], onInterrupted: rerun}
`, script, record))
	h.emu.RegisterRun("r_interrupted", "fail_action")
	h.produceRun(t, "r_interrupted", "fail_action")
	h.emu.RegisterRun("r_rerun", "rerun_action")
	h.produceRun(t, "r_rerun", "rerun_action")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	offsets := kadm.Offsets{}
	offsets.Add(kadm.Offset{Topic: h.topic, Partition: 0, At: 0, LeaderEpoch: -1, Metadata: "port-runner/1 s=0,1"})
	if _, err := kadm.NewClient(h.cluster.Client(t)).CommitOffsets(ctx, h.group, offsets); err != nil {
		t.Fatalf("plant the dead agent's commit: %v", err)
	}
	// The first Port requests about runs are the two lookups: each is refused twice.
	const refused = 4
	h.emu.FailNext(refused, 403)

	stop := h.start(t, cfg)
	if r := waitTerminated(t, h.emu, "r_interrupted"); r.Status != "FAILURE" || r.Terminations != 1 ||
		r.StatusLabel != "interrupted: the agent running it stopped" {
		t.Errorf("r_interrupted: %s %q, %d terminations; want one FAILURE interrupted", r.Status, r.StatusLabel, r.Terminations)
	}
	if r := waitTerminated(t, h.emu, "r_rerun"); r.Status != "SUCCESS" || r.Terminations != 1 {
		t.Errorf("r_rerun: %s %q, %d terminations; want one SUCCESS", r.Status, r.StatusLabel, r.Terminations)
	}
	assertCommittedToEnd(t, h)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	gets := map[int]int{}
	for _, rq := range h.emu.Requests() {
		if rq.Method == "GET" && strings.HasPrefix(rq.Path, "/v1/actions/runs/") {
			gets[rq.Status]++
		}
	}
	if gets[403] != refused || gets[200] != 2 {
		t.Errorf("lookups by status %v, want %d refused then one 200 per run", gets, refused)
	}
	if got := readFile(record); strings.TrimSpace(got) != "r_rerun" {
		t.Errorf("executed %q, want r_rerun only", got)
	}
}

// TestLookupEndsAtHandover: a lookup Port does not answer (an outage: every run request
// 503) is retried while the partition is this agent's, and ends when a revoke begins: the
// run was not taken here, so the new owner gets it with the partition, at once.
func TestLookupEndsAtHandover(t *testing.T) {
	h := newHarness(t, 2)
	cfg := h.config(t, `
  act: {command: ["true"], onInterrupted: rerun}
`)
	var ids []string
	for i := range 8 { // 2 x executor.maxConcurrent: all of them are polled at once
		id := fmt.Sprintf("r_lookup_%d", i)
		ids = append(ids, id)
		h.emu.RegisterRun(id, "act")
		h.produceRun(t, id, "act")
	}
	// An earlier owner started every one of them, whichever partition it is on.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(h.cluster.Client(t))
	ends, err := adm.ListEndOffsets(ctx, h.topic)
	if err != nil {
		t.Fatal(err)
	}
	offsets := kadm.Offsets{}
	for p := range int32(2) {
		if e, ok := ends.Lookup(h.topic, p); !ok || e.Offset == 0 {
			t.Fatalf("partition %d has no run: the test needs runs on both", p)
		}
		offsets.Add(kadm.Offset{Topic: h.topic, Partition: p, At: 0, LeaderEpoch: -1, Metadata: "port-runner/1 s=0,1,2,3,4,5,6,7"})
	}
	if _, err := adm.CommitOffsets(ctx, h.group, offsets); err != nil {
		t.Fatalf("plant the dead agent's commit: %v", err)
	}
	h.emu.FailNext(1<<30, 503)

	coreA, logsA := observer.New(zapcore.InfoLevel)
	_, stopA := h.startAgentWith(t, cfg, func(d *agent.Deps) { d.Logger = zap.New(coreA) })
	looked := func() int {
		seen := map[string]bool{}
		for _, rq := range h.emu.Requests() {
			if rq.Method == "GET" && strings.HasPrefix(rq.Path, "/v1/actions/runs/") {
				seen[rq.Path] = true
			}
		}
		return len(seen)
	}
	waitcond.For(t, "every run's lookup to be refused", 30*time.Second, func() bool { return looked() == len(ids) })

	coreB, logsB := observer.New(zapcore.InfoLevel)
	_, stopB := h.startAgentWith(t, cfg, func(d *agent.Deps) { d.Logger = zap.New(coreB) })
	waitcond.For(t, "the second agent to get a partition", 60*time.Second, func() bool {
		return logsB.FilterMessage("partitions assigned").Len() > 0
	})
	if logsA.FilterMessageSnippet("partitions handed over").Len() == 0 {
		t.Error("the first agent logged no handover")
	}
	h.emu.FailNext(0, 0)
	for _, id := range ids {
		if r := waitTerminated(t, h.emu, id); r.Status != "SUCCESS" || r.Terminations != 1 {
			t.Errorf("%s: %s %q, %d terminations", id, r.Status, r.StatusLabel, r.Terminations)
		}
	}
	if err := stopB(); err != nil {
		t.Fatal(err)
	}
	if err := stopA(); err != nil {
		t.Fatal(err)
	}
}

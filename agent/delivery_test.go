package agent_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLimitedActionDoesNotStarveOthers: an action limited to 1 with 5 runs queued on the
// one partition must not hold the replica's global slots: a run of another action behind
// them runs while they wait.
func TestLimitedActionDoesNotStarveOthers(t *testing.T) {
	h := newHarness(t, 1)
	dir := t.TempDir()
	gate := filepath.Join(dir, "gate")
	started := filepath.Join(dir, "started")
	slow := writeScript(t, `echo "$PORT_RUN_ID" >> "$1"
while [ ! -e "$2" ]; do sleep 0.05; done
`)
	fast := writeScript(t, `echo fast`)
	cfg := h.config(t, fmt.Sprintf(`
  limited: {command: [%q, %q, %q], maxConcurrent: 1}
  other: {command: [%q]}
`, slow, started, gate, fast))
	var ids []string
	for i := range 5 {
		id := fmt.Sprintf("r_limited_%d", i)
		ids = append(ids, id)
		h.emu.RegisterRun(id, "limited")
		h.cluster.Produce(t, h.topic, []byte("k"), sign(t, fmt.Sprintf(`{"action":"limited","context":{"runId":%q},"payload":{"properties":{}}}`, id)))
	}
	h.emu.RegisterRun("r_other", "other")
	h.cluster.Produce(t, h.topic, []byte("k"), sign(t, `{"action":"other","context":{"runId":"r_other"},"payload":{"properties":{}}}`))
	stop := h.start(t, cfg)

	// The gate stays shut, so at most one limited run can have started: the other run
	// finishing proves it did not wait for them.
	other := waitTerminated(t, h.emu, "r_other")
	if other.Status != "SUCCESS" {
		t.Fatalf("r_other: %s %q", other.Status, other.StatusLabel)
	}
	b, _ := os.ReadFile(started)
	if n := len(strings.Fields(string(b))); n > 1 {
		t.Fatalf("%d runs of an action limited to 1 started at once", n)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if r := waitTerminated(t, h.emu, id); r.Status != "SUCCESS" || r.Terminations != 1 {
			t.Errorf("%s: %s, %d terminations", id, r.Status, r.Terminations)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	assertCommittedToEnd(t, h)
}

package agent_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/port-runner/port-runner/internal/kfaketest"
	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/test/harness"
)

// TestHandoverAppliedButAnsweredFailed: agent A runs one run on each partition; the broker
// applies every commit and answers it failed (REQUEST_TIMED_OUT) while agent B joins, so
// A's handover of the partition B gets is in the group though A was told it failed. B reads
// the run leased to A and waits for it; A reads back what the group holds, finds its lease
// and goes on: both runs are executed once, closed once, and the partitions' commits pass
// them, with both agents still in the group (README "Delivery").
func TestHandoverAppliedButAnsweredFailed(t *testing.T) {
	h := harness.New(t, 2)
	if h.Broker.Fake == nil {
		t.Skip("needs the in-process broker to answer applied commits as failed")
	}
	dir := t.TempDir()
	record, gate := filepath.Join(dir, "executions"), filepath.Join(dir, "gate")
	cfg := h.Config(t, harness.Actions(fmt.Sprintf(`
  act: {command: [%q, %q, %q], onInterrupted: rerun}
`, harness.Script(t, `echo "start $PORT_RUN_ID" >> "$1"
while [ ! -e "$2" ]; do sleep 0.05; done
echo "end $PORT_RUN_ID" >> "$1"
`), record, gate)))
	var failing atomic.Bool
	answered := kfaketest.CommitsAppliedButFailed(h.Broker.Fake, &failing)

	prod := h.Broker.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ids := []string{"r_applied_0", "r_applied_1"}
	for p, id := range ids {
		h.Emu.RegisterRun(id, "act")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := prod.ProduceSync(ctx, &kgo.Record{Topic: h.Topic, Partition: int32(p), Key: []byte(id),
			Value: h.Sign(t, harness.RunMessage(id, "act"))}).FirstErr()
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	a := h.Start(t, cfg, harness.Named("A"))
	waitcond.For(t, "both runs to start", 60*time.Second, func() bool { return strings.Count(readFile(record), "start ") == 2 })

	failing.Store(true)
	b := h.Start(t, cfg, harness.Named("B"))
	waitcond.For(t, "A to hand a partition over", 60*time.Second, func() bool {
		return a.Logs.FilterMessageSnippet("partitions handed over").Len()+a.Logs.FilterMessageSnippet("partitions revoked").Len() > 0
	})
	failing.Store(false)
	if n := answered.Hits(); n < 3 {
		t.Fatalf("%d commits answered failed, want the handover's three tries", n)
	}
	if n := a.Logs.FilterMessageSnippet("handed over though their commit was answered failed").Len(); n != 1 {
		t.Errorf("%d lines of a handover read back, want 1", n)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for i, r := range h.WaitAllClosed(t, ids, 90*time.Second) {
		if r.Status != "SUCCESS" || r.Terminations != 1 || r.RejectedTerminations != 0 {
			t.Errorf("%s: %s %q, %d terminations, %d rejected", ids[i], r.Status, r.StatusLabel, r.Terminations, r.RejectedTerminations)
		}
	}
	h.WaitCommittedToEnd(t, 60*time.Second) // B's commit passes the run A held under its lease
	for _, id := range ids {
		if n := strings.Count(readFile(record), "start "+id+"\n"); n != 1 {
			t.Errorf("%s executed %d times, want once", id, n)
		}
	}
	for _, stop := range []func() error{b.Stop, a.Stop} {
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
}

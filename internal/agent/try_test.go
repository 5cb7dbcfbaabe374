package agent_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/test/harness"
)

// TestTryCountsItsRun: `port-runner try` holds its run like a consumed one, so
// runs_in_flight counts it while its command runs.
func TestTryCountsItsRun(t *testing.T) {
	h := harness.New(t, 1)
	dir := t.TempDir()
	started, gate := filepath.Join(dir, "started"), filepath.Join(dir, "gate")
	script := harness.Script(t, `touch "$1"; while [ ! -e "$2" ]; do sleep 0.05; done`)
	cfg := h.Config(t, harness.Actions(fmt.Sprintf("  act: {command: [%q, %q, %q]}\n", script, started, gate)))
	// No Kafka, as `port-runner try` has it: the run goes straight to the agent.
	cfg.Kafka = config.Kafka{Topic: cfg.Kafka.Topic, StartOffset: "latest", GroupProtocol: "classic", SessionTimeout: cfg.Kafka.SessionTimeout}
	cfg.Metrics.Addr = "-"
	a, err := h.New(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.Emu.RegisterRun("r_try", "act")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := a.Try(ctx, h.Sign(t, harness.RunMessage("r_try", "act")))
		done <- err
	}()
	waitcond.For(t, "the command to start", 30*time.Second, func() bool { _, err := os.Stat(started); return err == nil })
	waitcond.For(t, "runs_in_flight to count the run", 10*time.Second, func() bool {
		return testutil.ToFloat64(h.Metrics.RunsInFlight) == 1
	})
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := testutil.ToFloat64(h.Metrics.RunsInFlight); n != 0 {
		t.Errorf("runs_in_flight = %v after the run, want 0", n)
	}
	if r := h.WaitClosed(t, "r_try"); r.Status != "SUCCESS" || r.Terminations != 1 {
		t.Errorf("r_try: %s, %d terminations", r.Status, r.Terminations)
	}
}

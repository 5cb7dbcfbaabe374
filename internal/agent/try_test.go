package agent_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"

	"github.com/port-runner/port-runner/internal/agent"
	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/waitcond"
)

// TestTryCountsItsRun: `port-runner try` holds its run like a consumed one, so
// runs_in_flight counts it while its command runs.
func TestTryCountsItsRun(t *testing.T) {
	h := newHarness(t, 1)
	dir := t.TempDir()
	started, gate := filepath.Join(dir, "started"), filepath.Join(dir, "gate")
	script := writeScript(t, `touch "$1"; while [ ! -e "$2" ]; do sleep 0.05; done`)
	cfg := h.config(t, fmt.Sprintf("  act: {command: [%q, %q, %q]}\n", script, started, gate))
	// No Kafka, as `port-runner try` has it: the run goes straight to the agent.
	cfg.Kafka = config.Kafka{Topic: cfg.Kafka.Topic, StartOffset: "latest", GroupProtocol: "classic", RevokeTimeout: cfg.Kafka.RevokeTimeout}
	cfg.Metrics.Addr = "-"
	a, err := agent.New(cfg, agent.Deps{Logger: zaptest.NewLogger(t), Metrics: h.metrics})
	if err != nil {
		t.Fatal(err)
	}
	h.emu.RegisterRun("r_try", "act")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := a.Try(ctx, sign(t, `{"action":"act","context":{"runId":"r_try"},"payload":{"properties":{}}}`))
		done <- err
	}()
	waitcond.For(t, "the command to start", 30*time.Second, func() bool { _, err := os.Stat(started); return err == nil })
	waitcond.For(t, "runs_in_flight to count the run", 10*time.Second, func() bool {
		return testutil.ToFloat64(h.metrics.RunsInFlight) == 1
	})
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := testutil.ToFloat64(h.metrics.RunsInFlight); n != 0 {
		t.Errorf("runs_in_flight = %v after the run, want 0", n)
	}
	if r := waitTerminated(t, h.emu, "r_try"); r.Status != "SUCCESS" || r.Terminations != 1 {
		t.Errorf("r_try: %s, %d terminations", r.Status, r.Terminations)
	}
}

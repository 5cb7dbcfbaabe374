package e2e_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/agent"
	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/test/harness"
)

// The operations tests (lag, saturation, /metrics and /status after real runs) scrape an
// agent's own metrics server, as Prometheus and an operator do.

// gate is a file the test creates to let the gated action's commands end.
type gate string

func newGate(t *testing.T) gate { return gate(filepath.Join(t.TempDir(), "open")) }

func (g gate) open(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(string(g), nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// opsConfig: the action "gated" prints a line with a masked value and waits for the gate;
// "fails" exits 3.
func opsConfig(t *testing.T, h *harness.Env, maxConcurrent int, g gate) *config.Config {
	t.Helper()
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	return h.Config(t, fmt.Sprintf(`
port: {requestsPerSecond: 500}
security: {mask: ["s3cret-value"]}
executor: {maxConcurrent: %d, shutdownTimeout: 1s}
logs: {flushInterval: 100ms}
actions:
  gated:
    command: ["/bin/sh", "-c", %s]
    env: {GATE: %s}
  fails:
    command: ["/bin/sh", "-c", "echo failing; exit 3"]
`, maxConcurrent, q(`echo "started with s3cret-value"; while [ ! -e "$GATE" ]; do sleep 0.05; done; echo done`), q(q(string(g)))))
}

// lagEvery is how often the replicas read consumer_lag unless a test needs the production 5s.
const lagEvery = 300 * time.Millisecond

// replica starts an agent with a registry of its own, as each pod of a deployment has.
func replica(t *testing.T, h *harness.Env, cfg *config.Config, opts ...agent.Option) *harness.Agent {
	t.Helper()
	return h.Start(t, cfg, harness.OwnMetrics(), harness.With(append([]agent.Option{agent.WithLagInterval(lagEvery)}, opts...)...))
}

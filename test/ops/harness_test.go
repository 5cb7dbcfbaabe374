package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/zap/zaptest"

	"github.com/port-runner/port-runner/internal/agent"
	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/runmsg"
	"github.com/port-runner/port-runner/metrics"
	"github.com/port-runner/port-runner/test/kafkatest"
)

const secret = "test-client-secret-0123456789abcdef"

type harness struct {
	cluster *kafkatest.Cluster
	topic   string
	group   string
	emu     *emulator.Emulator
	baseURL string
	// lagInterval is the agents' agent.WithLagInterval (0: the production default, 5s).
	lagInterval time.Duration
	// closingBudget is the agents' agent.WithClosingBudget (0: the production default).
	closingBudget time.Duration
}

func newHarness(t *testing.T, partitions int) *harness {
	t.Helper()
	h := &harness{cluster: kafkatest.New(t), lagInterval: 300 * time.Millisecond}
	h.topic = h.cluster.Topic(t, partitions)
	h.group = h.cluster.Group(t)
	h.emu = emulator.New(emulator.Options{ClientID: "test-client", ClientSecret: secret, OrgID: "org_test", Topic: h.topic})
	ctx, cancel := context.WithCancel(context.Background())
	emuSrv, err := h.emu.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatalf("emulator: %v", err)
	}
	base := emuSrv.URL()
	t.Cleanup(func() { cancel(); _ = emuSrv.Wait() })
	h.baseURL = base
	return h
}

// gate is a file the test creates to let the gated action's commands end.
type gate string

func newGate(t *testing.T) gate { return gate(filepath.Join(t.TempDir(), "open")) }

func (g gate) open(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(string(g), nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// config: the action "gated" prints a line with a masked value and waits for the gate; "fails" exits 3.
func (h *harness) config(t *testing.T, maxConcurrent int, g gate) *config.Config {
	t.Helper()
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	yaml := fmt.Sprintf(`
port: {baseURL: %s, clientID: test-client, clientSecret: %s, orgID: org_test, requestsPerSecond: 500}
kafka: {brokers: %s, topic: %s, group: %s, startOffset: earliest}
security: {mask: ["s3cret-value"]}
executor: {maxConcurrent: %d, shutdownTimeout: 1s}
logs: {flushInterval: 100ms}
metrics: {addr: "-"}
actions:
  gated:
    command: ["/bin/sh", "-c", %s]
    env: {GATE: %s}
  fails:
    command: ["/bin/sh", "-c", "echo failing; exit 3"]
`, q(h.baseURL), q(secret), mustJSON(h.cluster.Brokers), q(h.topic), q(h.group), maxConcurrent,
		q(`echo "started with s3cret-value"; while [ ! -e "$GATE" ]; do sleep 0.05; done; echo done`), q(q(string(g))))
	cfg, err := config.Parse([]byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	if err := cfg.Validate(runmsg.CompileSelector, func(p string) (string, error) { return p, nil }); err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// replica is one running agent whose metrics handler is served over real HTTP.
type replica struct {
	agent   *agent.Agent
	metrics *metrics.Metrics
	url     string
	stop    func() error
}

func (h *harness) start(t *testing.T, cfg *config.Config) *replica {
	t.Helper()
	m := metrics.New()
	a, err := agent.New(cfg, agent.Deps{Logger: zaptest.NewLogger(t), Metrics: m, KafkaOpts: h.cluster.Opts},
		agent.WithLagInterval(h.lagInterval), agent.WithClosingBudget(h.closingBudget))
	if err != nil {
		t.Fatalf("agent: %v", err)
	}
	// The agent's own handler, on a test server: the same /metrics, /status a user scrapes.
	srv := httptest.NewServer(m.Handler(a.Ready))
	ctx, cancel := context.WithCancel(context.Background())
	var runErr error
	var wg sync.WaitGroup
	wg.Go(func() { runErr = a.Run(ctx, context.Background()) })
	var once sync.Once
	r := &replica{agent: a, metrics: m, url: srv.URL}
	r.stop = func() error {
		once.Do(func() { cancel(); wg.Wait(); srv.Close() })
		return runErr
	}
	t.Cleanup(func() { _ = r.stop() })
	return r
}

func (h *harness) produceRun(t *testing.T, id, action string) {
	t.Helper()
	h.emu.RegisterRun(id, action)
	b, err := runmsg.Sign(secret, time.Now().Unix(), fmt.Appendf(nil, `{"action":%q,"context":{"runId":%q},"payload":{"properties":{}}}`, action, id))
	if err != nil {
		t.Fatal(err)
	}
	h.cluster.Produce(t, h.topic, []byte(id), b)
}

// scrape GETs /metrics and parses it as Prometheus does.
func (r *replica) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(r.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

func (r *replica) status(t *testing.T) metrics.Status {
	t.Helper()
	resp, err := http.Get(r.url + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var st metrics.Status
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("/status: %v: %s", err, b)
	}
	return st
}

// series returns the samples of one family whose labels include want.
func series(fams map[string]*dto.MetricFamily, name string, want map[string]string) []*dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
	var out []*dto.Metric
	for _, m := range f.Metric {
		if hasLabels(m, want) {
			out = append(out, m)
		}
	}
	return out
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	got := map[string]string{}
	for _, l := range m.Label {
		got[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

// sum adds the values of the matching series; ok is false when there is none.
func sum(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	ms := series(fams, name, want)
	total := 0.0
	for _, m := range ms {
		total += value(m)
	}
	return total, len(ms) > 0
}

// waitFor polls cond until it holds or the deadline passes; it returns how long it took.

func waitClosed(t *testing.T, emu *emulator.Emulator, id string) emulator.RunState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	run, err := emu.WaitRun(ctx, id, func(r emulator.RunState) bool { return r.Status != "IN_PROGRESS" })
	if err != nil {
		t.Fatalf("run %s never closed: %v", id, err)
	}
	return run
}

func joinLines(ls []string) string { return strings.Join(ls, " | ") }

func runtimeVersion() string { return runtime.Version() }

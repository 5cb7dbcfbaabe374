package agent_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"go.uber.org/zap/zaptest"

	"github.com/port-runner/port-runner/internal/agent"
	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/runmsg"
	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/metrics"
	"github.com/port-runner/port-runner/test/kafkatest"
)

// vectorSecret signed ../shared/vectors (see its README).
const vectorSecret = "test-client-secret-0123456789abcdef"

const vectorsDir = "../../../shared/vectors"

// harness is one agent wired to a broker fixture and the Port emulator, as in production.
type harness struct {
	cluster *kafkatest.Cluster
	topic   string
	group   string
	emu     *emulator.Emulator
	baseURL string
	metrics *metrics.Metrics
}

func newHarness(t *testing.T, partitions int) *harness {
	t.Helper()
	return newHarnessWith(t, partitions, func(*emulator.Options) {})
}

// newHarnessWith lets a test change the emulator's options.
func newHarnessWith(t *testing.T, partitions int, tune func(*emulator.Options)) *harness {
	t.Helper()
	h := &harness{cluster: kafkatest.New(t), metrics: metrics.New()}
	h.topic = h.cluster.Topic(t, partitions)
	h.group = h.cluster.Group(t)
	opts := emulator.Options{ClientID: "test-client", ClientSecret: vectorSecret, OrgID: "org_test", Topic: h.topic}
	tune(&opts)
	h.emu = emulator.New(opts)
	ctx, cancel := context.WithCancel(context.Background())
	emuSrv, err := h.emu.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatalf("start emulator: %v", err)
	}
	base := emuSrv.URL()
	t.Cleanup(func() { cancel(); _ = emuSrv.Wait() })
	h.baseURL = base
	return h
}

// config builds the agent's config from YAML for the actions section.
func (h *harness) config(t *testing.T, actions string) *config.Config {
	t.Helper()
	yaml := fmt.Sprintf(`
port: {baseURL: %q, clientID: test-client, clientSecret: %q, orgID: org_test, requestsPerSecond: 200}
kafka: {brokers: [%q], topic: %q, group: %q, startOffset: earliest}
executor: {maxConcurrent: 4, shutdownTimeout: 10s}
logs: {flushInterval: 200ms}
metrics: {addr: "-"}
actions:
%s`, h.baseURL, vectorSecret, strings.Join(h.cluster.Brokers, ","), h.topic, h.group, actions)
	cfg, err := config.Parse([]byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	if err := cfg.Validate(runmsg.CompileSelector, func(p string) (string, error) { return p, nil }); err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

// start runs the agent until the returned stop func is called; stop returns Run's error.
func (h *harness) start(t *testing.T, cfg *config.Config) (stop func() error) {
	t.Helper()
	_, stop = h.startAgent(t, cfg)
	return stop
}

// startAgent is start, also giving the agent (for tests that wait until it is ready).
func (h *harness) startAgent(t *testing.T, cfg *config.Config) (a *agent.Agent, stop func() error) {
	t.Helper()
	return h.startAgentWith(t, cfg, func(*agent.Deps) {})
}

// startAgentWith is startAgent with the agent's Deps changed by tune.
func (h *harness) startAgentWith(t *testing.T, cfg *config.Config, tune func(*agent.Deps), opts ...agent.Option) (a *agent.Agent, stop func() error) {
	t.Helper()
	deps := agent.Deps{Logger: zaptest.NewLogger(t), Metrics: h.metrics, KafkaOpts: h.cluster.Opts}
	tune(&deps)
	a, err := agent.New(cfg, deps, opts...)
	if err != nil {
		t.Fatalf("agent: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var runErr error
	var wg sync.WaitGroup
	wg.Go(func() { runErr = a.Run(ctx, context.Background()) })
	var once sync.Once
	stop = func() error {
		once.Do(func() { cancel(); wg.Wait() })
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return a, stop
}

// waitFor polls cond until it holds or the deadline passes.

func waitTerminated(t *testing.T, emu *emulator.Emulator, id string) emulator.RunState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	run, err := emu.WaitRun(ctx, id, func(r emulator.RunState) bool { return r.Status != "IN_PROGRESS" })
	if err != nil {
		t.Fatalf("run %s never terminated: %v", id, err)
	}
	return run
}

func writeScript(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "script.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// produceRun writes a signed run message of action (no inputs), keyed by its run id.
func (h *harness) produceRun(t *testing.T, id, action string) {
	t.Helper()
	h.cluster.Produce(t, h.topic, []byte(id), sign(t, fmt.Sprintf(`{"action":%q,"context":{"runId":%q},"payload":{"properties":{}}}`, action, id)))
}

func sign(t *testing.T, body string) []byte {
	t.Helper()
	b, err := runmsg.Sign(vectorSecret, time.Now().Unix(), []byte(body))
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return b
}

// TestEndToEndVectors produces every shared vector plus a malformed message and a run of an
// unknown action to one partition, then one more run, and checks what Port saw.
func TestEndToEndVectors(t *testing.T) {
	h := newHarness(t, 3)
	record := filepath.Join(t.TempDir(), "executed")
	script := writeScript(t, `echo "$PORT_RUN_ID" >> "$1"
i=1
while [ $i -le 20 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done
`)
	cfg := h.config(t, fmt.Sprintf(`
  create_microservice: {command: [%[1]q, %[2]q], env: {SERVICE_NAME: .properties.name}}
  deploy_microservice: {command: [%[1]q, %[2]q], env: {ENVIRONMENT: .properties.environment}}
`, script, record))

	executed := []string{"r_QOz6WoOB1Q2lmhZZ", "r_z0nJYJv0wCm2ASTR", "r_v2KafkaExample01", "r_sentinel"}
	for _, id := range executed {
		action := "create_microservice"
		if id == "r_z0nJYJv0wCm2ASTR" {
			action = "deploy_microservice"
		}
		h.emu.RegisterRun(id, action)
	}
	h.emu.RegisterRun("r_unknown_action", "not_configured_here")

	// One key: one partition, so the sentinel proves the partition kept flowing past the
	// bad messages.
	key := []byte("one-partition")
	h.cluster.Produce(t, h.topic, key, []byte("this is not JSON"))
	h.cluster.Produce(t, h.topic, key, sign(t, `{"action":"not_configured_here","resourceType":"run","context":{"runId":"r_unknown_action"},"payload":{"properties":{}}}`))
	files, err := filepath.Glob(filepath.Join(vectorsDir, "*.json"))
	if err != nil || len(files) < 7 {
		t.Fatalf("vectors: %v (%d files)", err, len(files))
	}
	sort.Strings(files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		h.cluster.Produce(t, h.topic, key, b)
	}
	h.cluster.Produce(t, h.topic, key, sign(t, `{"action":"create_microservice","resourceType":"run","status":"TRIGGERED","context":{"entity":null,"blueprint":"microservice","runId":"r_sentinel"},"payload":{"entity":null,"properties":{"name":"last","region":"eu-west-1"}}}`))
	produced := int64(2 + len(files) + 1)

	stop := h.start(t, cfg)
	for _, id := range executed {
		run := waitTerminated(t, h.emu, id)
		if run.Status != "SUCCESS" || run.StatusLabel != "exit code 0" {
			t.Errorf("run %s: status %s %q, want SUCCESS \"exit code 0\"", id, run.Status, run.StatusLabel)
		}
		if run.Terminations != 1 || run.RejectedTerminations != 0 {
			t.Errorf("run %s: %d terminations, %d rejected; want exactly one", id, run.Terminations, run.RejectedTerminations)
		}
		var lines []string
		for _, e := range run.Logs {
			lines = append(lines, strings.Split(e.Message, "\n")...)
		}
		var want []string
		for i := 1; i <= 20; i++ {
			want = append(want, fmt.Sprintf("out %d", i), fmt.Sprintf("err %d", i))
		}
		if len(lines) != len(want)+1 || strings.Join(lines[:len(want)], "|") != strings.Join(want, "|") {
			t.Errorf("run %s: log lines out of order or missing:\n%q", id, lines)
		}
		if last := lines[len(lines)-1]; !strings.HasPrefix(last, "port-runner: exit code 0 after ") {
			t.Errorf("run %s: last log line %q, want the summary", id, last)
		}
	}

	outcome := func(o string) float64 { return testutil.ToFloat64(h.metrics.MessagesTotal.WithLabelValues(o)) }
	waitcond.For(t, "every message to be accounted for", 30*time.Second, func() bool {
		sum := 0.0
		for _, o := range []string{metrics.OutcomeAccepted, metrics.OutcomeIgnored, metrics.OutcomeInvalid, metrics.OutcomeBadSignature, metrics.OutcomeDuplicate} {
			sum += outcome(o)
		}
		return sum == float64(produced)
	})
	// Only now is every message handled (a partition's work ends out of order): the run of
	// an action not configured here could not have been reported later.
	if r, _ := h.emu.Run("r_unknown_action"); r.Status != "IN_PROGRESS" || len(r.Logs) != 0 {
		t.Errorf("a run of an action not configured here was reported: %+v", r)
	}
	for o, want := range map[string]float64{
		metrics.OutcomeAccepted: 4, metrics.OutcomeIgnored: 1, metrics.OutcomeInvalid: 1,
		metrics.OutcomeBadSignature: 2, metrics.OutcomeDuplicate: 2,
	} {
		if got := outcome(o); got != want {
			t.Errorf("messages_total{outcome=%q} = %v, want %v", o, got, want)
		}
	}

	if err := stop(); err != nil {
		t.Fatalf("agent stopped with error: %v", err)
	}
	got, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, id := range strings.Fields(string(got)) {
		counts[id]++
	}
	for _, id := range executed {
		if counts[id] != 1 {
			t.Errorf("run %s executed %d times, want once", id, counts[id])
		}
	}
	if len(counts) != len(executed) {
		t.Errorf("executed runs %v, want exactly %v", counts, executed)
	}
	assertCommittedToEnd(t, h)
}

// assertCommittedToEnd checks the group's committed offsets reach the end of every partition.
func assertCommittedToEnd(t *testing.T, h *harness) {
	t.Helper()
	adm := kadm.NewClient(h.cluster.Client(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, h.topic)
	if err != nil {
		t.Fatalf("end offsets: %v", err)
	}
	committed, err := adm.FetchOffsets(ctx, h.group)
	if err != nil {
		t.Fatalf("committed offsets: %v", err)
	}
	ends.Each(func(e kadm.ListedOffset) {
		if e.Offset == 0 {
			return
		}
		c, ok := committed.Lookup(h.topic, e.Partition)
		if !ok || c.At != e.Offset {
			t.Errorf("partition %d: committed %v (found %v), end %d", e.Partition, c.At, ok, e.Offset)
		}
	})
}

// TestEndToEndManyLines: 5,000 lines printed at once reach Port in a handful of requests, in order.
func TestEndToEndManyLines(t *testing.T) {
	h := newHarness(t, 1)
	cfg := h.config(t, `
  create_microservice: {command: ["seq", "1", "5000"]}
`)
	cfg.Logs.FlushInterval = config.Duration(time.Second)
	h.emu.RegisterRun("r_lines", "create_microservice")
	h.produceRun(t, "r_lines", "create_microservice")
	stop := h.start(t, cfg)
	run := waitTerminated(t, h.emu, "r_lines")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, e := range run.Logs {
		buf.WriteString(e.Message)
		buf.WriteByte('\n')
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 5001 {
		t.Fatalf("got %d log lines, want 5000 and the summary", len(lines))
	}
	for i := 0; i < 5000; i++ {
		if lines[i] != strconv.Itoa(i+1) {
			t.Fatalf("line %d is %q, want %d: out of order", i, lines[i], i+1)
		}
	}
	requests := 0
	for _, r := range h.emu.Requests() {
		if r.Method == "POST" && r.Path == "/v1/actions/runs/r_lines/logs" {
			requests++
		}
	}
	if requests > 5 {
		t.Errorf("5,000 lines took %d log requests, want a handful (<= 5)", requests)
	}
	t.Logf("5,000 lines in %d log requests (the last one closing)", requests)
	if run.Terminations != 1 || run.Status != "SUCCESS" {
		t.Errorf("termination: %d, status %s", run.Terminations, run.Status)
	}
}

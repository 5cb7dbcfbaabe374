package agent_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/metrics"
	"github.com/port-runner/port-runner/test/harness"
	"github.com/port-runner/port-runner/test/harness/vectors"
)

// TestEndToEndVectors produces every shared vector plus a malformed message and a run of an
// unknown action to one partition, then one more run, and checks what Port saw.
func TestEndToEndVectors(t *testing.T) {
	h := harness.New(t, 3)
	rec := harness.NewRecorder(t, `i=1
while [ $i -le 20 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done
`)
	cfg := h.Config(t, harness.Actions(fmt.Sprintf(`
  create_microservice: {command: %[1]s, env: {SERVICE_NAME: .properties.name}}
  deploy_microservice: {command: %[1]s, env: {ENVIRONMENT: .properties.environment}}
`, rec.Command())))

	executed := []string{"r_QOz6WoOB1Q2lmhZZ", "r_z0nJYJv0wCm2ASTR", "r_v2KafkaExample01", "r_sentinel"}
	for _, id := range executed {
		action := "create_microservice"
		if id == "r_z0nJYJv0wCm2ASTR" {
			action = "deploy_microservice"
		}
		h.Emu.RegisterRun(id, action)
	}
	h.Emu.RegisterRun("r_unknown_action", "not_configured_here")

	// One key: one partition, so the sentinel proves the partition kept flowing past the
	// bad messages.
	key := []byte("one-partition")
	h.Produce(t, key, []byte("this is not JSON"))
	h.Produce(t, key, h.Sign(t, `{"action":"not_configured_here","resourceType":"run","context":{"runId":"r_unknown_action"},"payload":{"properties":{}}}`))
	files, err := filepath.Glob(filepath.Join(vectors.Dir(t), "*.json"))
	if err != nil || len(files) < 7 {
		t.Fatalf("vectors: %v (%d files)", err, len(files))
	}
	sort.Strings(files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		h.Produce(t, key, b)
	}
	h.Produce(t, key, h.Sign(t, `{"action":"create_microservice","resourceType":"run","status":"TRIGGERED","context":{"entity":null,"blueprint":"microservice","runId":"r_sentinel"},"payload":{"entity":null,"properties":{"name":"last","region":"eu-west-1"}}}`))
	produced := int64(2 + len(files) + 1)

	stop := h.Start(t, cfg).Stop
	for _, id := range executed {
		run := h.WaitClosed(t, id)
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

	outcome := func(o string) float64 { return testutil.ToFloat64(h.Metrics.MessagesTotal.WithLabelValues(o)) }
	waitcond.For(t, "every message to be accounted for", 30*time.Second, func() bool {
		sum := 0.0
		for _, o := range []string{metrics.OutcomeAccepted, metrics.OutcomeIgnored, metrics.OutcomeInvalid, metrics.OutcomeBadSignature, metrics.OutcomeDuplicate} {
			sum += outcome(o)
		}
		return sum == float64(produced)
	})
	// Only now is every message handled (a partition's work ends out of order): the run of
	// an action not configured here could not have been reported later.
	if r, _ := h.Emu.Run("r_unknown_action"); r.Status != "IN_PROGRESS" || len(r.Logs) != 0 {
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

	h.WaitCommittedToEnd(t, 30*time.Second) // before the agent stops: it commits its last runs
	if err := stop(); err != nil {
		t.Fatalf("agent stopped with error: %v", err)
	}
	counts := map[string]int{}
	for _, id := range rec.Executed(t) {
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
}

// TestEndToEndManyLines: 5,000 lines printed at once reach Port in a handful of requests, in order.
func TestEndToEndManyLines(t *testing.T) {
	h := harness.New(t, 1)
	cfg := h.Config(t, harness.Actions(`
  create_microservice: {command: ["seq", "1", "5000"]}
`))
	cfg.Logs.FlushInterval = config.Duration(time.Second)
	h.NewRun(t, "r_lines", "create_microservice")
	stop := h.Start(t, cfg).Stop
	run := h.WaitClosed(t, "r_lines")
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
	for _, r := range h.Emu.Requests() {
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

package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/port-runner/port-runner/internal/runmsg"
	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/metrics"
	"github.com/port-runner/port-runner/test/harness"
	"github.com/port-runner/port-runner/test/harness/vectors"
)

// shapeRun is one of Port's shapes as this test puts it on the topic: its message, the run
// id it carries (renamed so that each shape is a run of its own) and how it runs.
type shapeRun struct {
	file, id string
	node     bool
	msg      []byte
}

// shapeRuns reads every shape: Kafka messages as they are, claimed runs (the polling
// transport's) as port-agent turns them into one; each gets a run id of its own and a fresh
// signature with the Env's secret (the original signatures are checked in runmsg's tests).
func shapeRuns(t *testing.T, h *harness.Env) (runs []shapeRun, changeLog []byte) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(vectors.PortDir(), "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no shapes in %s: %v", vectors.PortDir(), err)
	}
	for i, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(f)
		node := strings.Contains(name, "node_run")
		switch {
		case strings.Contains(name, "change_log"):
			changeLog = raw
			continue
		case !hasKey(raw, "context"): // an answer of the claim routes, not a message
			from := runmsg.FromClaimedRun
			if node {
				from = runmsg.FromClaimedNodeRun
			}
			if raw, err = from(raw); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		run, err := mustDecoder(t).Decode(raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		id := fmt.Sprintf("r_shape%02d", i)
		if node {
			id = fmt.Sprintf("wfnr_shape%02d", i)
		}
		raw = bytes.ReplaceAll(raw, []byte(`"`+run.ID+`"`), []byte(`"`+id+`"`))
		runs = append(runs, shapeRun{file: name, id: id, node: node, msg: h.Sign(t, string(raw))})
	}
	return runs, changeLog
}

func hasKey(raw []byte, key string) bool {
	var m map[string]json.RawMessage
	_ = json.Unmarshal(raw, &m)
	_, ok := m[key]
	return ok
}

func mustDecoder(t *testing.T) *runmsg.Decoder {
	t.Helper()
	d, err := runmsg.NewDecoder(runmsg.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Every way Port hands a run to an agent, in the shapes Port's own agent (port-agent) and
// Ocean take: WEBHOOK and GITLAB runs with agent: true, KAFKA runs, webhook node runs, and
// runs claimed from the polling routes, each runs its command and closes once; a change-log
// event on the topic is not a run.
func TestPortShapesRun(t *testing.T) {
	h := harness.New(t, 1)
	runs, changeLog := shapeRuns(t, h)
	cfg := h.Config(t, quickLogs+`actions:
  Create: {command: [/bin/sh, -c, 'echo "ran $PORT_RUN_ID"']}
  create_vm: {command: [/bin/sh, -c, 'echo "ran $PORT_RUN_ID for $CPU cpus"'], env: {CPU: .properties.cpu}}
  action_identifier: {command: [/bin/sh, -c, 'echo "ran $PORT_RUN_ID"']}
  deploy: {command: [/bin/sh, -c, 'echo "ran $PORT_RUN_ID"']}
  test-action-identifier: {command: [/bin/sh, -c, 'echo "ran $PORT_RUN_ID"']}
  webhook_node:
    command: [/bin/sh, -c, 'echo "ran $PORT_RUN_ID"']
    workflowNode: {url: https://httpbin.org/post}
  polled_node:
    command: [/bin/sh, -c, 'echo "ran $PORT_RUN_ID"']
    workflowNode: {url: "http://localhost:8080/webhook"}
  ocean_node:
    command: [/bin/sh, -c, 'echo "ran $PORT_RUN_ID"']
    workflowNode: {selector: '.payload.action.invocationMethod.type == "INTEGRATION_ACTION"'}
`)
	h.Start(t, cfg)
	h.Produce(t, []byte("change-log"), changeLog)
	for _, r := range runs {
		if r.node {
			h.Emu.RegisterNodeRun(r.id, "ci")
		} else {
			h.Emu.RegisterRun(r.id, "shape")
		}
		h.Produce(t, []byte(r.id), r.msg)
	}
	for _, r := range runs {
		got := h.WaitClosed(t, r.id)
		if got.Status != "SUCCESS" || got.Terminations != 1 || !strings.Contains(logText(got), "ran "+r.id) {
			t.Errorf("%s: %s %q, %d terminations, log:\n%s", r.file, got.Status, got.StatusLabel, got.Terminations, logText(got))
		}
	}
	if len(runs) < 15 {
		t.Fatalf("only %d shapes", len(runs))
	}
	ignored := h.Metrics.MessagesTotal.WithLabelValues(metrics.OutcomeIgnored)
	waitcond.For(t, "the change-log event to be ignored", 30*time.Second, func() bool { return testutil.ToFloat64(ignored) == 1 })
	t.Logf("%d shapes ran", len(runs))
}

package agent_test

import (
	"context"
	"strings"
	"testing"

	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/test/harness"
)

// pollingAgentOverlay is an agent on Port's claim API instead of Kafka.
const pollingAgentOverlay = "transport: polling\nkafka: null\npolling: {interval: 1s, visibilityTimeout: 10s}\nlogs: {flushInterval: 100ms}\n"

func pollingHarness(t *testing.T) *harness.Env {
	return harness.New(t, 1, harness.WithPort(func(o *emulator.Options) { o.Delivery = emulator.DeliveryPolling }))
}

// A claimed node run no action matches, with workflowNodeRuns.unmatched: fail, is
// acknowledged before it is completed FAILED, as every claimed run this replica ends is:
// Port offers an unacknowledged run again.
func TestPollingUnmatchedNodeRunIsAcknowledged(t *testing.T) {
	h := pollingHarness(t)
	h.Start(t, h.Config(t, pollingAgentOverlay+"workflowNodeRuns: {unmatched: fail}\n"+
		harness.Actions("  build: {command: [\"true\"], timeout: 1m, workflowNode: {url: \"https://ci.invalid/build\"}}\n")))
	nr, err := h.Emu.CreateNodeRun(context.Background(), "ci", "deploy", emulator.CreateNodeRunRequest{URL: "https://ci.invalid/deploy"})
	if err != nil {
		t.Fatal(err)
	}
	if run := h.WaitClosed(t, nr.ID); run.Result != "FAILED" || run.Terminations != 1 || !run.Acked || run.RejectedAcks != 0 {
		t.Fatalf("unmatched node run: result %s, %d terminations, acked %v (%d refused); want FAILED once, acknowledged",
			run.Result, run.Terminations, run.Acked, run.RejectedAcks)
	}
}

// A polling replica's drain says what it stops (claims), never partitions it has none of.
func TestPollingDrainNamesNoPartitions(t *testing.T) {
	h := pollingHarness(t)
	a := h.Start(t, h.Config(t, pollingAgentOverlay+harness.Actions("  noop: {command: [\"true\"], timeout: 1m}\n")))
	a.WaitReady(t)
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	stopping := a.Logs.FilterMessageSnippet("stopping: no new runs").All()
	if len(stopping) == 0 {
		t.Fatalf("no drain line logged:\n%s", a.LogText())
	}
	for _, e := range stopping {
		if strings.Contains(e.Message, "partition") {
			t.Errorf("a polling replica's drain line names partitions: %q", e.Message)
		}
	}
}

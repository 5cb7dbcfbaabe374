package agent_test

import (
	"context"
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

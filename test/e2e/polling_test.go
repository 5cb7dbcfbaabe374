package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/port-runner/port-runner/executor"
	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/portapi"
	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/test/harness"
)

// pollingOverlay is an agent on Port's claim API instead of Kafka: no kafka: section at all.
const pollingOverlay = "transport: polling\nkafka: null\npolling: {interval: 1s, visibilityTimeout: 10s}\n"

// runIDs finds run ids in a path, to count requests by route.
var runIDs = regexp.MustCompile(`r_[A-Za-z0-9]+`)

func pollingEnv(t *testing.T) *harness.Env {
	return harness.New(t, 1, harness.WithPort(func(o *emulator.Options) { o.Delivery = emulator.DeliveryPolling }))
}

// Three replicas polling Port for 300 runs: each run is claimed by one, leased, executed
// once and closed once; no claim asks for more runs than the replica has free slots, and no second
// acknowledgement is ever needed.
func TestPollingReplicasRunEachRunOnce(t *testing.T) {
	const runs = 300
	h := pollingEnv(t)
	rec := harness.NewRecorder(t)
	cfg := h.Config(t, pollingOverlay+quickLogs+harness.Actions(fmt.Sprintf("  poll: {command: %s, timeout: 1m}\n", rec.Command())))
	var ids []string
	for range runs {
		r, err := h.Emu.CreateRun(context.Background(), "poll", emulator.CreateRunRequest{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	for _, name := range []string{"A", "B", "C"} {
		h.Start(t, cfg, harness.Named(name), harness.TestLogLevel(zapcore.WarnLevel))
	}
	closed := h.WaitAllClosed(t, ids, 2*time.Minute)

	for _, r := range closed {
		if !strings.HasPrefix(r.ExternalRunID, "port-runner lease ") {
			t.Errorf("run %s: externalRunId %q, want its lease (its action has a timeout)", r.ID, r.ExternalRunID)
		}
		if r.Status != "SUCCESS" || r.Terminations != 1 || r.RejectedTerminations != 0 || !r.Acked || r.RejectedAcks != 0 {
			t.Errorf("run %s: status %s, terminations %d (rejected %d), acked %v (rejected acks %d); want SUCCESS once, acknowledged once",
				r.ID, r.Status, r.Terminations, r.RejectedTerminations, r.Acked, r.RejectedAcks)
		}
	}
	want := slices.Clone(ids)
	slices.Sort(want)
	if got := rec.Executed(t); !slices.Equal(got, want) {
		t.Errorf("executed %d times for %d runs; each must run exactly once", len(got), runs)
	}
	maxSlots := cfg.Executor.MaxConcurrent
	byRoute := map[string]int{}
	for _, rq := range h.Emu.Requests() {
		route := rq.Method + " " + runIDs.ReplaceAllString(rq.Path, "{id}")
		byRoute[route]++
		if rq.Path != "/v1/actions/runs/claim-pending" {
			continue
		}
		var in struct{ Limit int }
		if err := json.Unmarshal(rq.Body, &in); err != nil || in.Limit < 1 || in.Limit > maxSlots {
			t.Fatalf("a claim asked for %d runs (%v) with %d slots", in.Limit, err, maxSlots)
		}
	}
	total := 0
	for route, n := range byRoute {
		total += n
		t.Logf("%-45s %5d requests, %.2f per run", route, n, float64(n)/runs)
	}
	t.Logf("all routes: %d requests, %.2f per run", total, float64(total)/runs)
}

// A claimed run that waits for its action's slot longer than its claim is not acknowledged
// late: it is left, Port offers it again, and another replica (or this one, later) runs it.
// Each run executes once; no acknowledgement is ever refused.
func TestPollingClaimExpiresWhileWaiting(t *testing.T) {
	h := pollingEnv(t)
	rec := harness.NewRecorder(t, "sleep 3")
	cfg := h.Config(t, "transport: polling\nkafka: null\npolling: {interval: 1s, visibilityTimeout: 1s}\n"+
		"executor: {maxConcurrent: 2}\n"+quickLogs+
		harness.Actions(fmt.Sprintf("  slow: {command: %s, maxConcurrent: 1, timeout: 1m}\n", rec.Command())))
	var ids []string
	for range 2 {
		r, err := h.Emu.CreateRun(context.Background(), "slow", emulator.CreateRunRequest{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	h.Start(t, cfg, harness.Named("A"))
	// A claims both and runs one; the other waits for the action's one slot past its claim.
	waitcond.For(t, "a run claimed again after its claim expired unacknowledged", 10*time.Second, func() bool {
		for _, id := range ids {
			if r, _ := h.Emu.Run(id); r.Claims >= 2 && !r.Acked {
				return true
			}
		}
		return false
	})
	h.Start(t, cfg, harness.Named("B"))
	for _, r := range h.WaitAllClosed(t, ids, 30*time.Second) {
		if r.Status != "SUCCESS" || r.Terminations != 1 || r.RejectedAcks != 0 {
			t.Errorf("run %s: %s, %d terminations, %d refused acknowledgements", r.ID, r.Status, r.Terminations, r.RejectedAcks)
		}
	}
	want := slices.Clone(ids)
	slices.Sort(want)
	if got := rec.Executed(t); !slices.Equal(got, want) {
		t.Errorf("executed %v, want each of %v once", got, want)
	}
}

// A workflow node run claimed from /v1/workflows/runs/claim-pending goes to the action whose
// workflowNode selects it, is acknowledged on the node-run route and completed once. Port's
// claimed node run names no workflow or node: the selector reads its node's config.
func TestPollingNodeRun(t *testing.T) {
	h := pollingEnv(t)
	rec := harness.NewRecorder(t, `echo "::port-output::built=yes"`)
	cfg := h.Config(t, pollingOverlay+quickLogs+harness.Actions(fmt.Sprintf(
		"  build: {command: %s, timeout: 1m, workflowNode: {selector: '.context.nodeConfig.url == \"https://ci.invalid/build\"'}}\n", rec.Command())))
	a := h.Start(t, cfg)
	a.WaitReady(t)
	// A polling replica serves /status and /metrics like a consuming one (no partitions).
	url := a.MetricsURL(t)
	harness.Status(t, url)
	// Ready comes before the first claim (it needs the token only): the claims are counted
	// once their answer came, or the test fails at the deadline.
	waitcond.For(t, "/metrics to count claims (port_runner_port_requests_total{endpoint=\"run_claim\"})", 10*time.Second, func() bool {
		_, ok := harness.Scrape(t, url).Sum("port_runner_port_requests_total", harness.Labels("endpoint", "run_claim"))
		return ok
	})
	// Claims wait for Port's budget as their own priority, between the proxy and the logs.
	waitcond.For(t, "claims in port_request_wait_seconds{priority=\"claim\"}", 10*time.Second, func() bool {
		_, ok := harness.Scrape(t, url).Sum("port_runner_port_request_wait_seconds", harness.Labels("priority", "claim"))
		return ok
	})
	nr, err := h.Emu.CreateNodeRun(context.Background(), "ci", "build", emulator.CreateNodeRunRequest{Payload: map[string]any{"image": "api"}, URL: "https://ci.invalid/build"})
	if err != nil {
		t.Fatal(err)
	}
	run := h.WaitClosed(t, nr.ID)
	if run.Result != "SUCCESS" || run.Terminations != 1 || !run.Acked || run.RejectedAcks != 0 || run.Output["built"] != "yes" {
		t.Fatalf("node run: result %s, %d terminations, acked %v (%d refused), output %v\nlog:\n%s",
			run.Result, run.Terminations, run.Acked, run.RejectedAcks, run.Output, logText(run))
	}
	if got := rec.Executed(t); !slices.Equal(got, []string{nr.ID}) {
		t.Errorf("executed %v, want %s once", got, nr.ID)
	}
}

// A replica's sweep closes, as interrupted, a run another replica leased and acknowledged
// and whose lease ended (that replica is gone); it leaves a run whose lease holds, one whose
// externalRunId is not a lease (its command set its own), and one never acknowledged.
func TestPollingSweepClosesEndedLeases(t *testing.T) {
	h := pollingEnv(t)
	ctx := context.Background()
	gone, err := portapi.New(portapi.Options{BaseURL: h.PortURL(), ClientID: harness.ClientID, ClientSecret: h.ClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range 4 {
		r, err := h.Emu.CreateRun(ctx, "deploy", emulator.CreateRunRequest{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	// The replica that is gone claimed all four and leased them; it acknowledged the first
	// three before it died. The fourth, still pending, is Port's to offer again.
	if got, err := gone.ClaimRuns(ctx, portapi.Claim{Limit: 4, VisibilityTimeout: 10 * time.Minute}); err != nil || len(got) != 4 {
		t.Fatalf("claim %v %v", got, err)
	}
	ended := "port-runner lease gone-pod until " + time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	marks := []string{ended, "port-runner lease gone-pod until " + time.Now().Add(time.Hour).UTC().Format(time.RFC3339), "gh-run-42", ended}
	for i, id := range ids {
		if err := gone.PatchRun(ctx, id, portapi.RunPatch{ExternalRunID: &marks[i]}); err != nil {
			t.Fatal(err)
		}
		if i < 3 {
			if err := gone.AckRun(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	cfg := h.Config(t, "transport: polling\nkafka: null\npolling: {sweepInterval: 1s}\n"+quickLogs+
		harness.Actions("  deploy: {command: [/bin/true], timeout: 1m}\n"))
	h.Start(t, cfg)
	closed := h.WaitClosed(t, ids[0])
	if closed.Status != "FAILURE" || !strings.HasPrefix(closed.StatusLabel, "interrupted:") || closed.Terminations != 1 {
		t.Fatalf("run with an ended lease: %s %q, %d terminations", closed.Status, closed.StatusLabel, closed.Terminations)
	}
	// Two more sweeps at least: the others stay open.
	sweeps := func() int {
		n := 0
		for _, rq := range h.Emu.Requests() {
			if rq.Method == "GET" && rq.Path == "/v1/actions/runs" {
				n++
			}
		}
		return n
	}
	after := sweeps()
	waitcond.For(t, "two more sweeps", 10*time.Second, func() bool { return sweeps() >= after+2 })
	for _, id := range ids[1:] {
		if r, _ := h.Emu.Run(id); r.Status != "IN_PROGRESS" {
			t.Errorf("run %s (externalRunId %q) closed: %s %q", id, r.ExternalRunID, r.Status, r.StatusLabel)
		}
	}
}

// A claimed run the agent cannot read is acknowledged and closed FAILURE, not left to come
// back to every replica for ever; its inputs stay out of Port's summary.
func TestPollingInvalidRunIsClosed(t *testing.T) {
	h := pollingEnv(t)
	rec := harness.NewRecorder(t)
	cfg := h.Config(t, pollingOverlay+quickLogs+"message: {runId: '.payload.properties.rid // .context.runId'}\n"+
		harness.Actions(fmt.Sprintf("  deploy: {command: %s, timeout: 1m}\n", rec.Command())))
	h.Start(t, cfg)
	bad, err := h.Emu.CreateRun(context.Background(), "deploy", emulator.CreateRunRequest{Properties: map[string]any{"rid": 12345}})
	if err != nil {
		t.Fatal(err)
	}
	good, err := h.Emu.CreateRun(context.Background(), "deploy", emulator.CreateRunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if r := h.WaitClosed(t, good.ID); r.Status != "SUCCESS" {
		t.Fatalf("readable run: %s %q", r.Status, r.StatusLabel)
	}
	r := h.WaitClosed(t, bad.ID)
	if r.Status != "FAILURE" || r.StatusLabel != "invalid run" || !r.Acked || r.Claims != 1 || r.Terminations != 1 || strings.Contains(r.Summary, "12345") {
		t.Fatalf("unreadable run: %s %q %q, acked %v, claims %d, terminations %d", r.Status, r.StatusLabel, r.Summary, r.Acked, r.Claims, r.Terminations)
	}
	if got := rec.Executed(t); !slices.Equal(got, []string{good.ID}) {
		t.Errorf("executed %v, want only %s", got, good.ID)
	}
}

// A polled run lives the same lifecycle as a consumed one: cancelled in Port while its
// command runs, the command is stopped within the status interval and the kill grace, and
// the agent sends no closing of its own.
func TestPollingRunCancelledInPort(t *testing.T) {
	h := pollingEnv(t)
	interval := time.Second
	pidFile := filepath.Join(t.TempDir(), "pids")
	a := h.Start(t, h.Config(t, pollingOverlay+quickLogs+fmt.Sprintf(
		"port: {runStatusInterval: %s}\nactions:\n  quiet:\n    command: [/bin/sh, -c, %q]\n    env: {PIDS: %q}\n    timeout: 10m\n",
		interval, quietScript, `"`+pidFile+`"`)))
	run, err := h.Emu.CreateRun(context.Background(), "quiet", emulator.CreateRunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	ps := pids(t, pidFile)
	at := time.Now()
	h.AsUser(t, "PATCH", "/v1/actions/runs/"+run.ID, nil, map[string]string{"status": "FAILURE"})
	took := stoppedWithin(t, ps, at, interval+executor.DefaultKillGrace+slack)
	waitCancelledInPort(t, a, "quiet")
	if got := noTermination(t, h, run.ID); !got.Acked {
		t.Fatalf("run %s was not acknowledged", run.ID)
	}
	t.Logf("stopped %s after the cancel", took)
}

// A claimed node run goes to the action whose workflowNode names its node's url, as a node
// run on the topic does: the claimed config's url is the node's.
func TestPollingNodeRunByURL(t *testing.T) {
	h := pollingEnv(t)
	rec := harness.NewRecorder(t)
	h.Start(t, h.Config(t, pollingOverlay+quickLogs+harness.Actions(fmt.Sprintf(
		"  build: {command: %s, timeout: 1m, workflowNode: {url: \"https://ci.invalid/build\"}}\n", rec.Command()))))
	nr, err := h.Emu.CreateNodeRun(context.Background(), "ci", "build", emulator.CreateNodeRunRequest{URL: "https://ci.invalid/build"})
	if err != nil {
		t.Fatal(err)
	}
	if run := h.WaitClosed(t, nr.ID); run.Result != "SUCCESS" || run.Terminations != 1 || !run.Acked {
		t.Fatalf("node run: result %s, %d terminations, acked %v\nlog:\n%s", run.Result, run.Terminations, run.Acked, logText(run))
	}
	if got := rec.Executed(t); !slices.Equal(got, []string{nr.ID}) {
		t.Errorf("executed %v, want %s once", got, nr.ID)
	}
}

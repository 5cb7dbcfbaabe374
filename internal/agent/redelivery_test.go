package agent_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"go.uber.org/zap/zaptest"

	"github.com/port-runner/port-runner/internal/agent"
	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/portapi"
	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/metrics"
)

// TestRedeliveryAfterAnAgentDied plants what a dead agent leaves in the group's committed
// metadata (offset 0 committed; 0 finished; 1, 2 and 3 started) and checks the next owner:
// finished -> skipped; started and terminated in Port -> skipped; started and still
// IN_PROGRESS -> onInterrupted (fail closes it, rerun runs it); fresh -> runs, one request.
func TestRedeliveryAfterAnAgentDied(t *testing.T) {
	h := newHarness(t, 1)
	record := filepath.Join(t.TempDir(), "executed")
	script := writeScript(t, `echo "$PORT_RUN_ID" >> "$1"`)
	cfg := h.config(t, fmt.Sprintf(`
  fail_action: {command: [%[1]q, %[2]q], onInterrupted: fail}
  rerun_action: {command: [%[1]q, %[2]q], onInterrupted: rerun}
`, script, record))

	runs := []struct{ id, action string }{
		{"r_finished", "fail_action"},    // offset 0: finished before
		{"r_closed", "fail_action"},      // 1: started, Port has its termination
		{"r_interrupted", "fail_action"}, // 2: started, never closed -> FAILURE interrupted
		{"r_rerun", "rerun_action"},      // 3: started, never closed -> runs again
		{"r_fresh", "fail_action"},       // 4: never started
	}
	for _, r := range runs {
		h.emu.RegisterRun(r.id, r.action)
		h.produceRun(t, r.id, r.action)
	}
	api, err := portapi.New(portapi.Options{BaseURL: h.baseURL, ClientID: "test-client", ClientSecret: vectorSecret, RequestsPerSecond: 100})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := api.CloseRun(ctx, "r_closed", portapi.Closing{Message: "closed by the agent that died", TerminationStatus: "SUCCESS"}); err != nil {
		t.Fatal(err)
	}
	// Offset 1 committed (0 finished, so the commit moved past it), 1-3 started, as the dead
	// agent's last commit would say it; plus "finished" for offset 0 to prove it is ignored
	// below the committed offset.
	adm := kadm.NewClient(h.cluster.Client(t))
	offsets := kadm.Offsets{}
	offsets.Add(kadm.Offset{Topic: h.topic, Partition: 0, At: 1, LeaderEpoch: -1, Metadata: "port-runner/1 s=0,1,2"})
	if _, err := adm.CommitOffsets(ctx, h.group, offsets); err != nil {
		t.Fatalf("plant the dead agent's commit: %v", err)
	}
	requestsBefore := len(h.emu.Requests())

	stop := h.start(t, cfg)
	interrupted := waitTerminated(t, h.emu, "r_interrupted")
	if interrupted.Status != "FAILURE" || interrupted.StatusLabel != "interrupted: the agent running it stopped" {
		t.Errorf("r_interrupted: %s %q, want FAILURE interrupted", interrupted.Status, interrupted.StatusLabel)
	}
	rerun := waitTerminated(t, h.emu, "r_rerun")
	if rerun.Status != "SUCCESS" || !strings.Contains(rerun.Logs[0].Message, "running again") {
		t.Errorf("r_rerun: %s %q, logs %+v; want it run again and SUCCESS", rerun.Status, rerun.StatusLabel, rerun.Logs)
	}
	fresh := waitTerminated(t, h.emu, "r_fresh")
	if fresh.Status != "SUCCESS" || fresh.Terminations != 1 {
		t.Errorf("r_fresh: %+v", fresh)
	}
	waitcond.For(t, "the skipped runs to be counted", 20*time.Second, func() bool {
		return testutil.ToFloat64(h.metrics.MessagesTotal.WithLabelValues(metrics.OutcomeDuplicate)) == 1
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	if r, _ := h.emu.Run("r_finished"); r.Status != "IN_PROGRESS" || len(r.Logs) != 0 {
		t.Errorf("offset 0 was below the committed offset, yet its run was touched: %+v", r)
	}
	if r, _ := h.emu.Run("r_closed"); r.Terminations != 1 || r.RejectedTerminations != 0 || len(r.Logs) != 1 {
		t.Errorf("r_closed was closed before; it must be left alone: %+v", r)
	}
	got, _ := os.ReadFile(record)
	executed := strings.Fields(string(got))
	sort.Strings(executed)
	if strings.Join(executed, " ") != "r_fresh r_rerun" {
		t.Errorf("executed %v, want exactly r_fresh and r_rerun", executed)
	}
	// Port requests per run: a fresh quiet run costs exactly its closing request; only runs
	// an earlier owner started cost a GET first.
	per := map[string][]string{}
	for _, r := range h.emu.Requests()[requestsBefore:] {
		if parts := strings.Split(r.Path, "/"); len(parts) >= 5 && parts[3] == "runs" {
			per[parts[4]] = append(per[parts[4]], r.Method+" "+strings.Join(parts[5:], "/"))
		}
	}
	want := map[string]string{
		"r_fresh":       "POST logs",
		"r_closed":      "GET ",
		"r_interrupted": "GET |POST logs",
		"r_rerun":       "GET |POST logs",
	}
	for id, w := range want {
		if g := strings.Join(per[id], "|"); g != w {
			t.Errorf("requests for %s: %q, want %q", id, g, w)
		}
	}
	assertCommittedToEnd(t, h)
}

// TestPortOutage: Port answers 503 for a while; runs are not lost and each gets exactly
// one termination once Port recovers.
func TestPortOutage(t *testing.T) {
	h := newHarness(t, 2)
	record := filepath.Join(t.TempDir(), "executed")
	script := writeScript(t, `echo "$PORT_RUN_ID" >> "$1"; echo "ran $PORT_RUN_ID"`)
	cfg := h.config(t, fmt.Sprintf(`
  create_microservice: {command: [%q, %q]}
`, script, record))
	a, stop := h.startAgent(t, cfg)
	// Joined before the runs exist, so they come as fresh runs: no Port lookup first.
	waitcond.For(t, "the agent to be ready", 20*time.Second, func() bool { return a.Ready() == nil })

	h.emu.SetDown(true)
	// A run keeps its pool slot until Port has its termination, so an outage holds at most
	// executor.maxConcurrent (4 here) closings: memory stays bounded by the pool.
	const n = 4
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("r_outage_%d", i)
		h.emu.RegisterRun(id, "create_microservice")
		h.produceRun(t, id, "create_microservice")
	}
	waitcond.For(t, "every command to run while Port is down", 30*time.Second, func() bool {
		b, _ := os.ReadFile(record)
		return len(strings.Fields(string(b))) == n
	})
	waitcond.For(t, "the agent to hit the outage", 20*time.Second, func() bool {
		for _, r := range h.emu.Requests() {
			if r.Status == 503 {
				return true
			}
		}
		return false
	})
	h.emu.SetDown(false)
	for i := 0; i < n; i++ {
		run := waitTerminated(t, h.emu, fmt.Sprintf("r_outage_%d", i))
		if run.Status != "SUCCESS" || run.Terminations != 1 || run.RejectedTerminations != 0 {
			t.Errorf("%s after the outage: %s, %d terminations, %d rejected", run.ID, run.Status, run.Terminations, run.RejectedTerminations)
		}
		if len(run.Logs) == 0 || !strings.Contains(run.Logs[len(run.Logs)-1].Message, "ran "+run.ID) {
			t.Errorf("%s: output lost in the outage: %+v", run.ID, run.Logs)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	assertCommittedToEnd(t, h)
}

// TestGroupProtocolConsumer runs the agent with KIP-848 server-side assignment.
func TestGroupProtocolConsumer(t *testing.T) {
	h := newHarness(t, 3)
	cfg := h.config(t, `
  create_microservice: {command: ["echo", "kip-848"]}
`)
	cfg.Kafka.GroupProtocol = "consumer"
	ids := []string{"r_848_a", "r_848_b", "r_848_c"}
	for _, id := range ids {
		h.emu.RegisterRun(id, "create_microservice")
		h.produceRun(t, id, "create_microservice")
	}
	stop := h.start(t, cfg)
	for _, id := range ids {
		if run := waitTerminated(t, h.emu, id); run.Status != "SUCCESS" || run.Terminations != 1 {
			t.Errorf("%s: %+v", id, run)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The broker says which protocol the group runs: the option must not quietly fall back.
	groups, err := kadm.NewClient(h.cluster.Client(t)).ListGroups(ctx)
	if err != nil {
		t.Fatalf("list groups: %v", err)
	}
	g, ok := groups[h.group]
	switch {
	case !ok:
		t.Errorf("group %s not listed", h.group)
	case g.GroupType == "":
		t.Logf("broker does not report group types; protocol not checked")
	case g.GroupType != "consumer":
		t.Errorf("group %s runs the %q protocol, want consumer (KIP-848)", h.group, g.GroupType)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	assertCommittedToEnd(t, h)
}

// TestShutdownCancelsWhatOutlivesTheTimeout: on stop, a command that outlives
// executor.shutdownTimeout is cancelled and its run closed as such; a quick one finishes;
// everything is committed and Run returns.
func TestShutdownCancelsWhatOutlivesTheTimeout(t *testing.T) {
	h := newHarness(t, 1)
	cfg := h.config(t, `
  slow: {command: ["sleep", "60"]}
  quick: {command: ["sh", "-c", "sleep 0.3; echo finished in time"]}
`)
	cfg.Executor.ShutdownTimeout = config.Duration(time.Second)
	for _, r := range [][2]string{{"r_slow", "slow"}, {"r_quick", "quick"}} {
		h.emu.RegisterRun(r[0], r[1])
		h.produceRun(t, r[0], r[1])
	}
	a, err := agent.New(cfg, agent.Deps{Logger: zaptest.NewLogger(t), Metrics: h.metrics, KafkaOpts: h.cluster.Opts})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- a.Run(ctx, context.Background()) }()
	waitcond.For(t, "both runs to be executing", 20*time.Second, func() bool {
		return testutil.ToFloat64(h.metrics.RunsInFlight) == 2
	})
	stopped := time.Now()
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after shutdownTimeout")
	}
	t.Logf("stopped %s after the signal (shutdownTimeout 1s)", time.Since(stopped).Round(time.Millisecond))
	if r, _ := h.emu.Run("r_slow"); r.Status != "FAILURE" || r.StatusLabel != "cancelled: agent shutting down" || r.Terminations != 1 {
		t.Errorf("r_slow: %s %q (%d terminations), want FAILURE cancelled", r.Status, r.StatusLabel, r.Terminations)
	}
	if r, _ := h.emu.Run("r_quick"); r.Status != "SUCCESS" || r.Terminations != 1 {
		t.Errorf("r_quick: %s %q, want it to finish during the drain", r.Status, r.StatusLabel)
	}
	assertCommittedToEnd(t, h)
}

// TestRunUnknownToPortDoesNotStallThePartition: Port answers 404 for a run it does not know;
// the agent gives up on it and the partition flows on and is committed past it.
func TestRunUnknownToPortDoesNotStallThePartition(t *testing.T) {
	h := newHarness(t, 1)
	cfg := h.config(t, `
  create_microservice: {command: ["echo", "hi"]}
`)
	h.emu.RegisterRun("r_known", "create_microservice")
	for _, id := range []string{"r_unknown_to_port", "r_known"} {
		h.produceRun(t, id, "create_microservice")
	}
	stop := h.start(t, cfg)
	if run := waitTerminated(t, h.emu, "r_known"); run.Status != "SUCCESS" {
		t.Fatalf("r_known: %+v", run)
	}
	waitcond.For(t, "the partition to be committed past the unknown run", 20*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		o, err := kadm.NewClient(h.cluster.Client(t)).FetchOffsets(ctx, h.group)
		if err != nil {
			return false
		}
		c, ok := o.Lookup(h.topic, 0)
		return ok && c.At == 2
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestNewGroupFromEarliestSkipsClosedRuns: a new group reading from the earliest offset
// finds runs that were handled before (under another group, or by hand): nothing committed
// says so, so Port is asked. Closed ones are never executed again; open ones run.
func TestNewGroupFromEarliestSkipsClosedRuns(t *testing.T) {
	h := newHarness(t, 1)
	record := filepath.Join(t.TempDir(), "executed")
	script := writeScript(t, `echo "$PORT_RUN_ID" >> "$1"`)
	cfg := h.config(t, fmt.Sprintf(`
  create_microservice: {command: [%q, %q]}
`, script, record))
	for _, id := range []string{"r_closed_long_ago", "r_still_open"} {
		h.emu.RegisterRun(id, "create_microservice")
		h.produceRun(t, id, "create_microservice")
	}
	api, err := portapi.New(portapi.Options{BaseURL: h.baseURL, ClientID: "test-client", ClientSecret: vectorSecret, RequestsPerSecond: 100})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := api.CloseRun(ctx, "r_closed_long_ago", portapi.Closing{Message: "done elsewhere", TerminationStatus: "SUCCESS"}); err != nil {
		t.Fatal(err)
	}

	stop := h.start(t, cfg) // a new group, startOffset: earliest
	if run := waitTerminated(t, h.emu, "r_still_open"); run.Status != "SUCCESS" {
		t.Fatalf("r_still_open: %+v", run)
	}
	waitcond.For(t, "the closed run to be skipped", 20*time.Second, func() bool {
		return testutil.ToFloat64(h.metrics.MessagesTotal.WithLabelValues(metrics.OutcomeDuplicate)) == 1
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if r, _ := h.emu.Run("r_closed_long_ago"); r.Terminations != 1 || r.RejectedTerminations != 0 || len(r.Logs) != 1 {
		t.Errorf("a closed run was touched again: %+v", r)
	}
	got, _ := os.ReadFile(record)
	if strings.TrimSpace(string(got)) != "r_still_open" {
		t.Errorf("executed %q, want only r_still_open", got)
	}
	assertCommittedToEnd(t, h)
}

// TestReadyAfterAnIdleTokenExpired: a replica with nothing to do must not turn unready
// because its Port token expired unused; /readyz gets a new one.
func TestReadyAfterAnIdleTokenExpired(t *testing.T) {
	h := newHarnessWith(t, 1, func(o *emulator.Options) { o.TokenTTL = time.Second })
	cfg := h.config(t, `
  create_microservice: {command: ["true"]}
`)
	a, err := agent.New(cfg, agent.Deps{Logger: zaptest.NewLogger(t), Metrics: h.metrics, KafkaOpts: h.cluster.Opts})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- a.Run(ctx, context.Background()) }()
	defer func() { cancel(); <-errc }()
	waitcond.For(t, "the agent to be ready", 20*time.Second, func() bool { return a.Ready() == nil })
	auths := func() int {
		n := 0
		for _, r := range h.emu.Requests() {
			if r.Path == "/v1/auth/access_token" {
				n++
			}
		}
		return n
	}
	before := auths()
	deadline := time.Now().Add(1500 * time.Millisecond) // past the 1s token lifetime
	waitcond.For(t, "the idle token to lapse", 5*time.Second, func() bool { return time.Now().After(deadline) })
	if err := a.Ready(); err != nil {
		t.Fatalf("idle replica not ready after its token lapsed: %v", err)
	}
	if auths() <= before {
		t.Fatal("Ready did not fetch a new token")
	}
}

package agent_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/metrics"
	"github.com/port-runner/port-runner/test/harness"
)

// onInterruptedConfig has two actions whose command records its run: fail_action closes a
// run an earlier owner left interrupted as failed, rerun_action runs it again.
func onInterruptedConfig(t *testing.T, h *harness.Env) (*config.Config, harness.Recorder) {
	t.Helper()
	rec := harness.NewRecorder(t)
	return h.Config(t, harness.Actions(fmt.Sprintf(`
  fail_action: {command: %[1]s, onInterrupted: fail}
  rerun_action: {command: %[1]s, onInterrupted: rerun}
`, rec.Command()))), rec
}

// TestRedeliveryAfterAnAgentDied plants what a dead agent leaves in the group's committed
// metadata (offset 0 committed; 0 finished; 1, 2 and 3 started) and checks the next owner:
// finished -> skipped; started and terminated in Port -> skipped; started and still
// IN_PROGRESS -> onInterrupted (fail closes it, rerun runs it); fresh -> runs, one request.
func TestRedeliveryAfterAnAgentDied(t *testing.T) {
	h := harness.New(t, 1)
	cfg, rec := onInterruptedConfig(t, h)

	runs := []struct{ id, action string }{
		{"r_finished", "fail_action"},    // offset 0: finished before
		{"r_closed", "fail_action"},      // 1: started, Port has its termination
		{"r_interrupted", "fail_action"}, // 2: started, never closed -> FAILURE interrupted
		{"r_rerun", "rerun_action"},      // 3: started, never closed -> runs again
		{"r_fresh", "fail_action"},       // 4: never started
	}
	for _, r := range runs {
		h.NewRun(t, r.id, r.action)
	}
	h.CloseInPort(t, "r_closed", "closed by the agent that died")
	// Offset 1 committed (0 finished, so the commit moved past it), 1-3 started, as the dead
	// agent's last commit would say it; plus "finished" for offset 0 to prove it is ignored
	// below the committed offset.
	h.CommitAs(t, 0, 1, "port-runner/1 s=0,1,2 c=0")
	requestsBefore := len(h.Emu.Requests())

	stop := h.Start(t, cfg).Stop
	interrupted := h.WaitClosed(t, "r_interrupted")
	if interrupted.Status != "FAILURE" || interrupted.StatusLabel != "interrupted: the agent running it stopped" {
		t.Errorf("r_interrupted: %s %q, want FAILURE interrupted", interrupted.Status, interrupted.StatusLabel)
	}
	rerun := h.WaitClosed(t, "r_rerun")
	if rerun.Status != "SUCCESS" || !strings.Contains(rerun.Logs[0].Message, "running again") {
		t.Errorf("r_rerun: %s %q, logs %+v; want it run again and SUCCESS", rerun.Status, rerun.StatusLabel, rerun.Logs)
	}
	fresh := h.WaitClosed(t, "r_fresh")
	if fresh.Status != "SUCCESS" || fresh.Terminations != 1 {
		t.Errorf("r_fresh: %+v", fresh)
	}
	waitcond.For(t, "the skipped runs to be counted", 20*time.Second, func() bool {
		return testutil.ToFloat64(h.Metrics.MessagesTotal.WithLabelValues(metrics.OutcomeDuplicate)) == 1
	})
	h.WaitCommittedToEnd(t, 30*time.Second) // before the agent stops: it commits its last runs
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	if r, _ := h.Emu.Run("r_finished"); r.Status != "IN_PROGRESS" || len(r.Logs) != 0 {
		t.Errorf("offset 0 was below the committed offset, yet its run was touched: %+v", r)
	}
	if r, _ := h.Emu.Run("r_closed"); r.Terminations != 1 || r.RejectedTerminations != 0 || len(r.Logs) != 1 {
		t.Errorf("r_closed was closed before; it must be left alone: %+v", r)
	}
	executed := rec.Executed(t)
	if strings.Join(executed, " ") != "r_fresh r_rerun" {
		t.Errorf("executed %v, want exactly r_fresh and r_rerun", executed)
	}
	// Port requests per run: a fresh quiet run costs exactly its closing request; only runs
	// an earlier owner started cost a GET first.
	per := map[string][]string{}
	for _, r := range h.Emu.Requests()[requestsBefore:] {
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
}

// TestPortOutage: Port answers 503 for a while; runs are not lost and each gets exactly
// one termination once Port recovers.
func TestPortOutage(t *testing.T) {
	h := harness.New(t, 2)
	cfg, rec := h.RecordingConfig(t, "create_microservice", `echo "ran $PORT_RUN_ID"`)
	a := h.Start(t, cfg)
	stop := a.Stop
	// Joined before the runs exist, so they come as fresh runs: no Port lookup first.
	waitcond.For(t, "the agent to be ready", 20*time.Second, func() bool { return a.Ready() == nil })

	h.Emu.SetDown(true)
	// A run keeps its pool slot until Port has its termination, so an outage holds at most
	// executor.maxConcurrent (4 here) closings: memory stays bounded by the pool.
	const n = 4
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("r_outage_%d", i)
		h.NewRun(t, id, "create_microservice")
	}
	waitcond.For(t, "every command to run while Port is down", 30*time.Second, func() bool {
		return len(rec.Executed(t)) == n
	})
	waitcond.For(t, "the agent to hit the outage", 20*time.Second, func() bool {
		for _, r := range h.Emu.Requests() {
			if r.Status == 503 {
				return true
			}
		}
		return false
	})
	h.Emu.SetDown(false)
	for i := 0; i < n; i++ {
		run := h.WaitClosed(t, fmt.Sprintf("r_outage_%d", i))
		if run.Status != "SUCCESS" || run.Terminations != 1 || run.RejectedTerminations != 0 {
			t.Errorf("%s after the outage: %s, %d terminations, %d rejected", run.ID, run.Status, run.Terminations, run.RejectedTerminations)
		}
		// The output reaches Port in the closing request, or in a batch before it when the
		// machine is slow enough for a flush in between: either way, once.
		var log strings.Builder
		for _, e := range run.Logs {
			log.WriteString(e.Message + "\n")
		}
		if strings.Count(log.String(), "ran "+run.ID+"\n") != 1 {
			t.Errorf("%s: output lost in the outage: %+v", run.ID, run.Logs)
		}
	}
	h.WaitCommittedToEnd(t, 30*time.Second) // before the agent stops: it commits its last runs
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestGroupProtocolConsumer runs the agent with KIP-848 server-side assignment.
func TestGroupProtocolConsumer(t *testing.T) {
	h := harness.New(t, 3)
	cfg := h.Config(t, harness.Actions(`
  create_microservice: {command: ["echo", "kip-848"]}
`))
	cfg.Kafka.GroupProtocol = "consumer"
	ids := []string{"r_848_a", "r_848_b", "r_848_c"}
	for _, id := range ids {
		h.NewRun(t, id, "create_microservice")
	}
	stop := h.Start(t, cfg).Stop
	for _, id := range ids {
		if run := h.WaitClosed(t, id); run.Status != "SUCCESS" || run.Terminations != 1 {
			t.Errorf("%s: %+v", id, run)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The broker says which protocol the group runs: the option must not quietly fall back.
	groups, err := kadm.NewClient(h.Broker.Client(t)).ListGroups(ctx)
	if err != nil {
		t.Fatalf("list groups: %v", err)
	}
	g, ok := groups[h.Group]
	switch {
	case !ok:
		t.Errorf("group %s not listed", h.Group)
	case g.GroupType == "":
		t.Logf("broker does not report group types; protocol not checked")
	case g.GroupType != "consumer":
		t.Errorf("group %s runs the %q protocol, want consumer (KIP-848)", h.Group, g.GroupType)
	}
	h.WaitCommittedToEnd(t, 30*time.Second) // before the agent stops: it commits its last runs
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestShutdownCancelsWhatOutlivesTheTimeout: on stop, a command that outlives
// executor.shutdownTimeout is cancelled and its run closed as such; a quick one finishes;
// everything is committed and Run returns.
func TestShutdownCancelsWhatOutlivesTheTimeout(t *testing.T) {
	h := harness.New(t, 1)
	dir := t.TempDir()
	started, gate := filepath.Join(dir, "started"), filepath.Join(dir, "gate")
	// The quick command ends once the test opens the gate, just after the signal: well
	// within the drain, however long the machine took to start it.
	quick := harness.Script(t, `touch "$1"; while [ ! -e "$2" ]; do sleep 0.05; done; echo finished in time`)
	cfg := h.Config(t, harness.Actions(fmt.Sprintf(`
  slow: {command: ["sleep", "60"]}
  quick: {command: [%q, %q, %q]}
`, quick, started, gate)))
	cfg.Executor.ShutdownTimeout = config.Duration(time.Second)
	for _, r := range [][2]string{{"r_slow", "slow"}, {"r_quick", "quick"}} {
		h.NewRun(t, r[0], r[1])
	}
	a := h.Start(t, cfg)
	waitcond.For(t, "both runs to be executing", 20*time.Second, func() bool {
		_, err := os.Stat(started)
		return err == nil && testutil.ToFloat64(h.Metrics.RunsInFlight) == 2
	})
	stopped := time.Now()
	a.Cancel()
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Done():
		if err := a.Err(); err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after shutdownTimeout")
	}
	t.Logf("stopped %s after the signal (shutdownTimeout 1s)", time.Since(stopped).Round(time.Millisecond))
	if r, _ := h.Emu.Run("r_slow"); r.Status != "FAILURE" || r.StatusLabel != "cancelled: agent shutting down" || r.Terminations != 1 {
		t.Errorf("r_slow: %s %q (%d terminations), want FAILURE cancelled", r.Status, r.StatusLabel, r.Terminations)
	}
	if r, _ := h.Emu.Run("r_quick"); r.Status != "SUCCESS" || r.Terminations != 1 {
		t.Errorf("r_quick: %s %q, want it to finish during the drain", r.Status, r.StatusLabel)
	}
	// The agent left the group at the signal, leasing the runs to itself: the partition's
	// next owner learns they ended from Port and commits past them, running nothing.
	ranBefore := testutil.ToFloat64(h.Metrics.RunsTotal.WithLabelValues("slow", "failure"))
	stop := h.Start(t, cfg).Stop
	h.WaitCommittedToEnd(t, 30*time.Second)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if ran := testutil.ToFloat64(h.Metrics.RunsTotal.WithLabelValues("slow", "failure")) - ranBefore; ran != 0 {
		t.Errorf("the next owner ran r_slow again (%v)", ran)
	}
	if v := testutil.ToFloat64(h.Metrics.MessagesTotal.WithLabelValues(metrics.OutcomeDuplicate)); v != 2 {
		t.Errorf("duplicates = %v, want both runs skipped by the next owner", v)
	}
}

// TestRunUnknownToPortDoesNotStallThePartition: Port answers 404 for a run it does not know;
// the agent gives up on it and the partition flows on and is committed past it.
func TestRunUnknownToPortDoesNotStallThePartition(t *testing.T) {
	h := harness.New(t, 1)
	cfg := h.Config(t, harness.Actions(`
  create_microservice: {command: ["echo", "hi"]}
`))
	h.Emu.RegisterRun("r_known", "create_microservice")
	for _, id := range []string{"r_unknown_to_port", "r_known"} {
		h.ProduceRun(t, id, "create_microservice")
	}
	stop := h.Start(t, cfg).Stop
	if run := h.WaitClosed(t, "r_known"); run.Status != "SUCCESS" {
		t.Fatalf("r_known: %+v", run)
	}
	waitcond.For(t, "the partition to be committed past the unknown run", 20*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		o, err := kadm.NewClient(h.Broker.Client(t)).FetchOffsets(ctx, h.Group)
		if err != nil {
			return false
		}
		c, ok := o.Lookup(h.Topic, 0)
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
	h := harness.New(t, 1)
	cfg, rec := h.RecordingConfig(t, "create_microservice")
	for _, id := range []string{"r_closed_long_ago", "r_still_open"} {
		h.NewRun(t, id, "create_microservice")
	}
	h.CloseInPort(t, "r_closed_long_ago", "done elsewhere")

	stop := h.Start(t, cfg).Stop // a new group, startOffset: earliest
	if run := h.WaitClosed(t, "r_still_open"); run.Status != "SUCCESS" {
		t.Fatalf("r_still_open: %+v", run)
	}
	waitcond.For(t, "the closed run to be skipped", 20*time.Second, func() bool {
		return testutil.ToFloat64(h.Metrics.MessagesTotal.WithLabelValues(metrics.OutcomeDuplicate)) == 1
	})
	h.WaitCommittedToEnd(t, 30*time.Second) // before the agent stops: it commits its last runs
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if r, _ := h.Emu.Run("r_closed_long_ago"); r.Terminations != 1 || r.RejectedTerminations != 0 || len(r.Logs) != 1 {
		t.Errorf("a closed run was touched again: %+v", r)
	}
	if got := rec.Executed(t); strings.Join(got, " ") != "r_still_open" {
		t.Errorf("executed %q, want only r_still_open", got)
	}
}

// TestReadyAfterAnIdleTokenExpired: a replica with nothing to do must not turn unready
// because its Port token expired unused; /readyz gets a new one.
func TestReadyAfterAnIdleTokenExpired(t *testing.T) {
	h := harness.New(t, 1, harness.WithPort(func(o *emulator.Options) { o.TokenTTL = time.Second }))
	cfg := h.Config(t, harness.Actions(`
  create_microservice: {command: ["true"]}
`))
	a := h.Start(t, cfg)
	a.WaitReady(t)
	auths := func() int {
		n := 0
		for _, r := range h.Emu.Requests() {
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

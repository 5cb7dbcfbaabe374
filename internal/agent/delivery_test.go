package agent_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/port-runner/port-runner/internal/agent"
	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/metrics"
	"github.com/port-runner/port-runner/test/harness"
)

// TestLimitedActionDoesNotStarveOthers: an action limited to 1 with 5 runs queued on the
// one partition must not hold the replica's global slots: a run of another action behind
// them runs while they wait.
func TestLimitedActionDoesNotStarveOthers(t *testing.T) {
	h := harness.New(t, 1)
	dir := t.TempDir()
	gate := filepath.Join(dir, "gate")
	started := filepath.Join(dir, "started")
	slow := harness.Script(t, `echo "$PORT_RUN_ID" >> "$1"
while [ ! -e "$2" ]; do sleep 0.05; done
`)
	fast := harness.Script(t, `echo fast`)
	cfg := h.Config(t, harness.Actions(fmt.Sprintf(`
  limited: {command: [%q, %q, %q], maxConcurrent: 1}
  other: {command: [%q]}
`, slow, started, gate, fast)))
	var ids []string
	for i := range 5 {
		id := fmt.Sprintf("r_limited_%d", i)
		ids = append(ids, id)
		h.Emu.RegisterRun(id, "limited")
		h.Produce(t, []byte("k"), h.Sign(t, harness.RunMessage(id, "limited")))
	}
	h.Emu.RegisterRun("r_other", "other")
	h.Produce(t, []byte("k"), h.Sign(t, harness.RunMessage("r_other", "other")))
	stop := h.Start(t, cfg).Stop

	// The gate stays shut, so at most one limited run can have started: the other run
	// finishing proves it did not wait for them.
	other := h.WaitClosed(t, "r_other")
	if other.Status != "SUCCESS" {
		t.Fatalf("r_other: %s %q", other.Status, other.StatusLabel)
	}
	b, _ := os.ReadFile(started)
	if n := len(strings.Fields(string(b))); n > 1 {
		t.Fatalf("%d runs of an action limited to 1 started at once", n)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if r := h.WaitClosed(t, id); r.Status != "SUCCESS" || r.Terminations != 1 {
			t.Errorf("%s: %s, %d terminations", id, r.Status, r.Terminations)
		}
	}
	h.WaitCommittedToEnd(t, 30*time.Second) // before the agent stops: it commits its last runs
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// closingRequests counts the closing requests Port answered for a run, by status.
func closingRequests(emu *emulator.Emulator, id string) map[int]int {
	out := map[int]int{}
	for _, rq := range emu.Requests() {
		if rq.Method == "POST" && rq.Path == "/v1/actions/runs/"+id+"/logs" && strings.Contains(string(rq.Body), `"terminationStatus"`) {
			out[rq.Status]++
		}
	}
	return out
}

// TestClosingRefusalsAreRetried: Port refuses a run's closing request (two 401s in a row,
// five 5xx, one 422): each run is still closed exactly once by the same agent, and the
// group's commit reaches the end of the partition.
func TestClosingRefusalsAreRetried(t *testing.T) {
	h := harness.New(t, 1)
	script := harness.Script(t, `echo hello`)
	cfg := h.Config(t, harness.Actions(fmt.Sprintf(`
  act: {command: [%q]}
`, script)))
	stop := h.Start(t, cfg).Stop
	for _, c := range []struct {
		id    string
		codes []int
	}{
		{"r_two401", []int{401, 401}},
		{"r_five5xx", []int{500, 502, 503, 503, 504}},
		{"r_one422", []int{422}},
	} {
		h.Emu.RefuseClosings(c.codes...)
		h.NewRun(t, c.id, "act")
		r := h.WaitClosed(t, c.id)
		if r.Status != "SUCCESS" || r.Terminations != 1 || r.RejectedTerminations != 0 {
			t.Errorf("%s: %s %q, %d terminations, %d rejected", c.id, r.Status, r.StatusLabel, r.Terminations, r.RejectedTerminations)
		}
		// The emulator records a request just after its state change: wait for it.
		waitcond.For(t, c.id+"'s accepted closing request", 10*time.Second, func() bool { return closingRequests(h.Emu, c.id)[200] > 0 })
		got := closingRequests(h.Emu, c.id)
		if got[200] != 1 || got[200]+sumExcept(got, 200) != len(c.codes)+1 {
			t.Errorf("%s: closing requests by status %v, want %d refused then one 200", c.id, got, len(c.codes))
		}
	}
	h.WaitCommittedToEnd(t, 30*time.Second) // before the agent stops: it commits its last runs
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if v := testutil.ToFloat64(h.Metrics.RunsUnclosed); v != 0 {
		t.Errorf("runs_unclosed_total = %v, want 0", v)
	}
}

func sumExcept(m map[int]int, k int) int {
	n := 0
	for c, v := range m {
		if c != k {
			n += v
		}
	}
	return n
}

// TestClosingRefusedForGood: Port refuses both the closing request and the minimal fallback:
// the run is counted as unclosed, and its partition's commit passes it only once the
// closing budget has ended.
func TestClosingRefusedForGood(t *testing.T) {
	h := harness.New(t, 1)
	script := harness.Script(t, `echo hello`)
	cfg := h.Config(t, harness.Actions(fmt.Sprintf(`
  act: {command: [%q]}
`, script)))
	h.Emu.RefuseClosings(422, 422)
	h.NewRun(t, "r_refused", "act")
	stop := h.Start(t, cfg, harness.With(agent.WithClosingBudget(3*time.Second))).Stop
	waitcond.For(t, "the run counted as unclosed", 30*time.Second, func() bool { return testutil.ToFloat64(h.Metrics.RunsUnclosed) == 1 })
	refusedAt := time.Now()
	if got := closingRequests(h.Emu, "r_refused"); got[422] != 2 || len(got) != 1 {
		t.Errorf("closing requests by status %v, want two 422s", got)
	}
	// The commit stays before the run while the budget lasts, then passes it.
	waitcond.For(t, "the commit to pass the refused run", 30*time.Second, func() bool { return h.CommittedOffset(t, 0) == 1 })
	if d := time.Since(refusedAt); d < time.Second {
		t.Errorf("commit passed the refused run %s after the refusal, before the 3s budget ended", d)
	}
	h.WaitCommittedToEnd(t, 30*time.Second) // before the agent stops: it commits its last runs
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if r, _ := h.Emu.Run("r_refused"); r.Status != "IN_PROGRESS" {
		t.Errorf("r_refused: %s, want it still open (Port refused every close)", r.Status)
	}
}

// TestReplayedOldMessageNeverRuns: a genuine message signed in 2001 for a run Port shows
// terminated is skipped as a duplicate, also by a restarted agent; one signed an hour ahead
// is rejected; an old message of a run still open runs, and a fresh run costs one request.
func TestReplayedOldMessageNeverRuns(t *testing.T) {
	h := harness.New(t, 1)
	cfg, rec := h.RecordingConfig(t, "act")
	signAt := func(at time.Time, id string) []byte { return h.SignAt(t, at, harness.RunMessage(id, "act")) }
	in2001 := time.Date(2001, 9, 1, 0, 0, 0, 0, time.UTC)
	replay := signAt(in2001, "r_replayed")
	h.Emu.RegisterRun("r_replayed", "act")
	h.Emu.RegisterRun("r_future", "act")
	h.Emu.RegisterRun("r_old_open", "act")
	h.Emu.RegisterRun("r_fresh", "act")
	h.CloseInPort(t, "r_replayed", "done long ago")
	key := []byte("k")
	h.Produce(t, key, replay)
	h.Produce(t, key, signAt(time.Now().Add(time.Hour), "r_future"))
	h.Produce(t, key, signAt(in2001, "r_old_open"))
	h.ProduceRun(t, "r_fresh", "act")

	outcome := func(o string) float64 { return testutil.ToFloat64(h.Metrics.MessagesTotal.WithLabelValues(o)) }
	stop := h.Start(t, cfg).Stop
	h.WaitClosed(t, "r_old_open")
	h.WaitClosed(t, "r_fresh")
	// A partition's messages end in any order: the replay and the hour-ahead message may
	// still be on their way after the runs behind them closed.
	waitcond.For(t, "the replay and the hour-ahead message to be counted", 30*time.Second, func() bool {
		return outcome(metrics.OutcomeDuplicate) >= 1 && outcome(metrics.OutcomeBadSignature) >= 1
	})
	h.WaitCommittedToEnd(t, 30*time.Second) // before the agent stops: it commits its last runs
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// After a restart the same bytes come again (Port, or someone, re-sent them).
	h.Produce(t, key, replay)
	h.Emu.RegisterRun("r_sentinel", "act")
	before := len(h.Emu.Requests())
	h.ProduceRun(t, "r_sentinel", "act")
	stop = h.Start(t, cfg).Stop
	h.WaitClosed(t, "r_sentinel")
	waitcond.For(t, "the second replay to be counted", 30*time.Second, func() bool { return outcome(metrics.OutcomeDuplicate) >= 2 })
	h.WaitCommittedToEnd(t, 30*time.Second) // before the agent stops: it commits its last runs
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	got := rec.Executed(t)
	if want := []string{"r_fresh", "r_old_open", "r_sentinel"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("executed %v, want %v", got, want)
	}
	if r, _ := h.Emu.Run("r_replayed"); r.Terminations != 1 || r.RejectedTerminations != 0 {
		t.Errorf("r_replayed: %d terminations, %d rejected", r.Terminations, r.RejectedTerminations)
	}
	if r, _ := h.Emu.Run("r_future"); r.Status != "IN_PROGRESS" || len(r.Logs) != 0 {
		t.Errorf("r_future was reported: %+v", r)
	}
	if v := outcome(metrics.OutcomeDuplicate); v != 2 {
		t.Errorf("duplicates = %v, want 2 (the replay, twice)", v)
	}
	if v := outcome(metrics.OutcomeBadSignature); v != 1 {
		t.Errorf("bad_signature = %v, want 1 (the hour-ahead message)", v)
	}
	// Committed by the first agent, so the sentinel is fresh: one closing request, no lookup.
	var fresh []string
	for _, rq := range h.Emu.Requests()[before:] {
		if strings.Contains(rq.Path, "r_sentinel") {
			fresh = append(fresh, rq.Method+" "+rq.Path)
		}
	}
	if len(fresh) != 1 {
		t.Errorf("a fresh quiet run cost %d requests, want 1: %v", len(fresh), fresh)
	}
}

// TestFatalKafkaErrorDrainsWithinShutdownTimeout: the broker refuses the topic for good
// (TOPIC_AUTHORIZATION_FAILED) while a run goes on: the agent is not ready at once, gives
// the run shutdownTimeout, cancels and closes it, and Run returns the error.
func TestFatalKafkaErrorDrainsWithinShutdownTimeout(t *testing.T) {
	h := harness.New(t, 1)
	if h.Broker.Fake == nil {
		t.Skip("needs the in-process broker to script a fetch refusal")
	}
	dir := t.TempDir()
	started := filepath.Join(dir, "started")
	script := harness.Script(t, `echo x > "$1"
while :; do sleep 0.05; done
`)
	cfg := h.Config(t, harness.Actions(fmt.Sprintf(`
  act: {command: [%q, %q]}
`, script, started)))
	cfg.Executor.ShutdownTimeout = config.Duration(time.Second)
	h.NewRun(t, "r_long", "act")
	a := h.Start(t, cfg)
	stop := a.Stop
	waitcond.For(t, "the run to start", 30*time.Second, func() bool { _, err := os.Stat(started); return err == nil })
	waitcond.For(t, "the agent to be ready", 30*time.Second, func() bool { return a.Ready() == nil })

	h.Broker.Fake.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		h.Broker.Fake.KeepControl()
		fr := req.(*kmsg.FetchRequest)
		resp := fr.ResponseKind().(*kmsg.FetchResponse)
		for _, rt := range fr.Topics {
			st := kmsg.NewFetchResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewFetchResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	waitcond.For(t, "the agent to say it is not ready", 30*time.Second, func() bool { return a.Ready() != nil })
	if r, _ := h.Emu.Run("r_long"); r.Status != "IN_PROGRESS" {
		t.Fatalf("r_long ended (%s) before the agent said it was not ready", r.Status)
	}
	r := h.WaitClosed(t, "r_long")
	if r.Status != "FAILURE" || r.StatusLabel != "cancelled: agent shutting down" {
		t.Errorf("r_long: %s %q", r.Status, r.StatusLabel)
	}
	if err := stop(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("Run = %v, want the authorization error", err)
	}
}

// TestClosingGoesOnPastTheBudgetWhileThePartitionIsOurs: Port is down for longer than the
// closing budget; the run is still closed, once, when Port is back, without a restart.
func TestClosingGoesOnPastTheBudgetWhileThePartitionIsOurs(t *testing.T) {
	h := harness.New(t, 1)
	script := harness.Script(t, `echo hello`)
	cfg := h.Config(t, harness.Actions(fmt.Sprintf(`
  act: {command: [%q]}
`, script)))
	a := h.Start(t, cfg, harness.With(agent.WithClosingBudget(time.Second)))
	stop := a.Stop
	waitcond.For(t, "the agent to be ready", 30*time.Second, func() bool { return a.Ready() == nil })
	h.Emu.SetDown(true)
	h.NewRun(t, "r_outage", "act")
	// Wait for a refused closing request sent after the budget had ended.
	waitcond.For(t, "a closing attempt past the budget", 60*time.Second, func() bool {
		var first time.Time
		for _, rq := range h.Emu.Requests() {
			if rq.Status != 503 || !strings.Contains(rq.Path, "r_outage") {
				continue
			}
			if first.IsZero() {
				first = rq.At
			} else if rq.At.Sub(first) > 1500*time.Millisecond {
				return true
			}
		}
		return false
	})
	h.Emu.SetDown(false)
	r := h.WaitClosed(t, "r_outage")
	if r.Status != "SUCCESS" || r.Terminations != 1 || r.RejectedTerminations != 0 {
		t.Errorf("r_outage: %s %q, %d terminations, %d rejected", r.Status, r.StatusLabel, r.Terminations, r.RejectedTerminations)
	}
	h.WaitCommittedToEnd(t, 30*time.Second) // before the agent stops: it commits its last runs
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

package agent_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/port-runner/port-runner/internal/agent"
	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/portapi"
	"github.com/port-runner/port-runner/internal/runmsg"
	"github.com/port-runner/port-runner/internal/waitcond"
)

// TestLimitedActionDoesNotStarveOthers: an action limited to 1 with 5 runs queued on the
// one partition must not hold the replica's global slots: a run of another action behind
// them runs while they wait.
func TestLimitedActionDoesNotStarveOthers(t *testing.T) {
	h := newHarness(t, 1)
	dir := t.TempDir()
	gate := filepath.Join(dir, "gate")
	started := filepath.Join(dir, "started")
	slow := writeScript(t, `echo "$PORT_RUN_ID" >> "$1"
while [ ! -e "$2" ]; do sleep 0.05; done
`)
	fast := writeScript(t, `echo fast`)
	cfg := h.config(t, fmt.Sprintf(`
  limited: {command: [%q, %q, %q], maxConcurrent: 1}
  other: {command: [%q]}
`, slow, started, gate, fast))
	var ids []string
	for i := range 5 {
		id := fmt.Sprintf("r_limited_%d", i)
		ids = append(ids, id)
		h.emu.RegisterRun(id, "limited")
		h.cluster.Produce(t, h.topic, []byte("k"), sign(t, fmt.Sprintf(`{"action":"limited","context":{"runId":%q},"payload":{"properties":{}}}`, id)))
	}
	h.emu.RegisterRun("r_other", "other")
	h.cluster.Produce(t, h.topic, []byte("k"), sign(t, `{"action":"other","context":{"runId":"r_other"},"payload":{"properties":{}}}`))
	stop := h.start(t, cfg)

	// The gate stays shut, so at most one limited run can have started: the other run
	// finishing proves it did not wait for them.
	other := waitTerminated(t, h.emu, "r_other")
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
		if r := waitTerminated(t, h.emu, id); r.Status != "SUCCESS" || r.Terminations != 1 {
			t.Errorf("%s: %s, %d terminations", id, r.Status, r.Terminations)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	assertCommittedToEnd(t, h)
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
	h := newHarness(t, 1)
	script := writeScript(t, `echo hello`)
	cfg := h.config(t, fmt.Sprintf(`
  act: {command: [%q]}
`, script))
	stop := h.start(t, cfg)
	for _, c := range []struct {
		id    string
		codes []int
	}{
		{"r_two401", []int{401, 401}},
		{"r_five5xx", []int{500, 502, 503, 503, 504}},
		{"r_one422", []int{422}},
	} {
		h.emu.RefuseClosings(c.codes...)
		h.emu.RegisterRun(c.id, "act")
		h.produceRun(t, c.id, "act")
		r := waitTerminated(t, h.emu, c.id)
		if r.Status != "SUCCESS" || r.Terminations != 1 || r.RejectedTerminations != 0 {
			t.Errorf("%s: %s %q, %d terminations, %d rejected", c.id, r.Status, r.StatusLabel, r.Terminations, r.RejectedTerminations)
		}
		// The emulator records a request just after its state change: wait for it.
		waitcond.For(t, c.id+"'s accepted closing request", 10*time.Second, func() bool { return closingRequests(h.emu, c.id)[200] > 0 })
		got := closingRequests(h.emu, c.id)
		if got[200] != 1 || got[200]+sumExcept(got, 200) != len(c.codes)+1 {
			t.Errorf("%s: closing requests by status %v, want %d refused then one 200", c.id, got, len(c.codes))
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	assertCommittedToEnd(t, h)
	if v := testutil.ToFloat64(h.metrics.RunsUnclosed); v != 0 {
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
	h := newHarness(t, 1)
	script := writeScript(t, `echo hello`)
	cfg := h.config(t, fmt.Sprintf(`
  act: {command: [%q]}
`, script))
	h.emu.RefuseClosings(422, 422)
	h.emu.RegisterRun("r_refused", "act")
	h.produceRun(t, "r_refused", "act")
	_, stop := h.startAgentWith(t, cfg, func(*agent.Deps) {}, agent.WithClosingBudget(3*time.Second))
	waitcond.For(t, "the run counted as unclosed", 30*time.Second, func() bool { return testutil.ToFloat64(h.metrics.RunsUnclosed) == 1 })
	refusedAt := time.Now()
	if got := closingRequests(h.emu, "r_refused"); got[422] != 2 || len(got) != 1 {
		t.Errorf("closing requests by status %v, want two 422s", got)
	}
	// The commit stays before the run while the budget lasts, then passes it.
	adm := h.cluster.Admin(t)
	waitcond.For(t, "the commit to pass the refused run", 30*time.Second, func() bool { return committedOffset(t, adm, h, 0) == 1 })
	if d := time.Since(refusedAt); d < time.Second {
		t.Errorf("commit passed the refused run %s after the refusal, before the 3s budget ended", d)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if r, _ := h.emu.Run("r_refused"); r.Status != "IN_PROGRESS" {
		t.Errorf("r_refused: %s, want it still open (Port refused every close)", r.Status)
	}
	assertCommittedToEnd(t, h)
}

// committedOffset is the group's committed offset of a partition (-1: none).
func committedOffset(t *testing.T, adm *kadm.Client, h *harness, partition int32) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	committed, err := adm.FetchOffsets(ctx, h.group)
	if err != nil {
		t.Fatalf("committed offsets: %v", err)
	}
	if c, ok := committed.Lookup(h.topic, partition); ok {
		return c.At
	}
	return -1
}

// TestReplayedOldMessageNeverRuns: a genuine message signed in 2001 for a run Port shows
// terminated is skipped as a duplicate, also by a restarted agent; one signed an hour ahead
// is rejected; an old message of a run still open runs, and a fresh run costs one request.
func TestReplayedOldMessageNeverRuns(t *testing.T) {
	h := newHarness(t, 1)
	record := filepath.Join(t.TempDir(), "executed")
	script := writeScript(t, `echo "$PORT_RUN_ID" >> "$1"`)
	cfg := h.config(t, fmt.Sprintf(`
  act: {command: [%q, %q]}
`, script, record))
	signAt := func(at time.Time, id string) []byte {
		b, err := runmsg.Sign(vectorSecret, at.Unix(), fmt.Appendf(nil, `{"action":"act","context":{"runId":%q},"payload":{"properties":{}}}`, id))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	in2001 := time.Date(2001, 9, 1, 0, 0, 0, 0, time.UTC)
	replay := signAt(in2001, "r_replayed")
	h.emu.RegisterRun("r_replayed", "act")
	h.emu.RegisterRun("r_future", "act")
	h.emu.RegisterRun("r_old_open", "act")
	h.emu.RegisterRun("r_fresh", "act")
	api, err := portapi.New(portapi.Options{BaseURL: h.baseURL, ClientID: "test-client", ClientSecret: vectorSecret, RequestsPerSecond: 100})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := api.CloseRun(ctx, "r_replayed", portapi.Closing{Message: "done long ago", TerminationStatus: "SUCCESS"}); err != nil {
		t.Fatal(err)
	}
	key := []byte("k")
	h.cluster.Produce(t, h.topic, key, replay)
	h.cluster.Produce(t, h.topic, key, signAt(time.Now().Add(time.Hour), "r_future"))
	h.cluster.Produce(t, h.topic, key, signAt(in2001, "r_old_open"))
	h.produceRun(t, "r_fresh", "act")

	stop := h.start(t, cfg)
	waitTerminated(t, h.emu, "r_old_open")
	waitTerminated(t, h.emu, "r_fresh")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// After a restart the same bytes come again (Port, or someone, re-sent them).
	h.cluster.Produce(t, h.topic, key, replay)
	h.emu.RegisterRun("r_sentinel", "act")
	before := len(h.emu.Requests())
	h.produceRun(t, "r_sentinel", "act")
	stop = h.start(t, cfg)
	waitTerminated(t, h.emu, "r_sentinel")
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	b, _ := os.ReadFile(record)
	got := strings.Fields(string(b))
	sort.Strings(got)
	if want := []string{"r_fresh", "r_old_open", "r_sentinel"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("executed %v, want %v", got, want)
	}
	if r, _ := h.emu.Run("r_replayed"); r.Terminations != 1 || r.RejectedTerminations != 0 {
		t.Errorf("r_replayed: %d terminations, %d rejected", r.Terminations, r.RejectedTerminations)
	}
	if r, _ := h.emu.Run("r_future"); r.Status != "IN_PROGRESS" || len(r.Logs) != 0 {
		t.Errorf("r_future was reported: %+v", r)
	}
	if v := testutil.ToFloat64(h.metrics.MessagesTotal.WithLabelValues("duplicate")); v != 2 {
		t.Errorf("duplicates = %v, want 2 (the replay, twice)", v)
	}
	if v := testutil.ToFloat64(h.metrics.MessagesTotal.WithLabelValues("bad_signature")); v != 1 {
		t.Errorf("bad_signature = %v, want 1 (the hour-ahead message)", v)
	}
	// Committed by the first agent, so the sentinel is fresh: one closing request, no lookup.
	var fresh []string
	for _, rq := range h.emu.Requests()[before:] {
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
	h := newHarness(t, 1)
	if h.cluster.Fake == nil {
		t.Skip("needs the in-process broker to script a fetch refusal")
	}
	dir := t.TempDir()
	started := filepath.Join(dir, "started")
	script := writeScript(t, `echo x > "$1"
while :; do sleep 0.05; done
`)
	cfg := h.config(t, fmt.Sprintf(`
  act: {command: [%q, %q]}
`, script, started))
	cfg.Executor.ShutdownTimeout = config.Duration(time.Second)
	h.emu.RegisterRun("r_long", "act")
	h.produceRun(t, "r_long", "act")
	a, stop := h.startAgent(t, cfg)
	waitcond.For(t, "the run to start", 30*time.Second, func() bool { _, err := os.Stat(started); return err == nil })
	waitcond.For(t, "the agent to be ready", 30*time.Second, func() bool { return a.Ready() == nil })

	h.cluster.Fake.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		h.cluster.Fake.KeepControl()
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
	if r, _ := h.emu.Run("r_long"); r.Status != "IN_PROGRESS" {
		t.Fatalf("r_long ended (%s) before the agent said it was not ready", r.Status)
	}
	r := waitTerminated(t, h.emu, "r_long")
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
	h := newHarness(t, 1)
	script := writeScript(t, `echo hello`)
	cfg := h.config(t, fmt.Sprintf(`
  act: {command: [%q]}
`, script))
	a, stop := h.startAgentWith(t, cfg, func(*agent.Deps) {}, agent.WithClosingBudget(time.Second))
	waitcond.For(t, "the agent to be ready", 30*time.Second, func() bool { return a.Ready() == nil })
	h.emu.SetDown(true)
	h.emu.RegisterRun("r_outage", "act")
	h.produceRun(t, "r_outage", "act")
	// Wait for a refused closing request sent after the budget had ended.
	waitcond.For(t, "a closing attempt past the budget", 60*time.Second, func() bool {
		var first time.Time
		for _, rq := range h.emu.Requests() {
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
	h.emu.SetDown(false)
	r := waitTerminated(t, h.emu, "r_outage")
	if r.Status != "SUCCESS" || r.Terminations != 1 || r.RejectedTerminations != 0 {
		t.Errorf("r_outage: %s %q, %d terminations, %d rejected", r.Status, r.StatusLabel, r.Terminations, r.RejectedTerminations)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	assertCommittedToEnd(t, h)
}

package e2e_test

import (
	"runtime"
	"strconv"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/port-runner/port-runner/internal/agent"
	"github.com/port-runner/port-runner/internal/portapi"
	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/test/harness"
)

// After real runs (two succeed, one fails, one message is not JSON, one is for an action
// configured elsewhere, Port answers one request 429, then one run Port refuses to close),
// /metrics has every metric the README lists, with its labels, and README's table lists
// every port_runner_ metric /metrics has.
func TestMetricsAfterRuns(t *testing.T) {
	h := harness.New(t, 2)
	// With a budget Port sends its x-ratelimit headers (port_budget_remaining); a 1s window
	// holds requests after the 429 for at most a second.
	h.Emu.SetBudget(100000, time.Second)
	h.Emu.FailNext(1, 429)
	g := newGate(t)
	g.open(t)
	// A short closing budget: the unclosed run lets go of its slot soon after.
	r := replica(t, h, opsConfig(t, h, 4, g), agent.WithClosingBudget(time.Second))
	h.NewRun(t, "r_ok_1", "gated")
	h.NewRun(t, "r_ok_2", "gated")
	h.NewRun(t, "r_fail", "fails")
	h.NewRun(t, "r_elsewhere", "not_configured_here")
	h.Produce(t, []byte("junk"), []byte("not json"))
	for _, id := range []string{"r_ok_1", "r_ok_2", "r_fail"} {
		h.WaitClosed(t, id)
	}
	// Alone, so no other run's closing takes the two refusals (its full closing request
	// and the minimal fallback).
	h.Emu.RefuseClosings(422, 422)
	h.NewRun(t, "r_unclosed", "gated")
	var fams harness.Families
	// Port has the closings before the agent has let go of the runs: wait for that too.
	waitcond.For(t, "every message counted, every run let go and the lag read after the commits", 15*time.Second, func() bool {
		fams = r.Scrape(t)
		n, _ := fams.Sum("port_runner_messages_total", nil)
		busy, _ := fams.Sum("port_runner_executor_slots", map[string]string{"state": "busy"})
		unclosed, _ := fams.Sum("port_runner_runs_unclosed_total", nil)
		lag, ok := fams.Sum("port_runner_consumer_lag", map[string]string{"topic": h.Topic})
		// A refresh from before the assignment also shows lag 0, but no ages: wait for one
		// that knows the owned partitions.
		ages := len(fams.Series("port_runner_consumer_lag_seconds", map[string]string{"topic": h.Topic}))
		// A run's slot is freed just before the run is let go: /status may still hold it.
		return n == 6 && unclosed == 1 && busy == 0 && ok && lag == 0 && ages == 2 && len(r.Status(t).Runs) == 0
	})
	if s, ok := h.Emu.Run("r_unclosed"); !ok || s.Status != "IN_PROGRESS" {
		t.Errorf("r_unclosed in Port: %+v, want still open (Port refused its closings)", s)
	}

	type want struct {
		name   string
		labels map[string]string
		check  func(v float64) bool // nil: any value
		desc   string
	}
	eq := func(x float64) func(float64) bool { return func(v float64) bool { return v == x } }
	pos := func(v float64) bool { return v > 0 }
	l := harness.Labels
	wants := []want{
		{"port_runner_runs_total", l("action", "gated", "result", "success"), eq(3), "3"},
		{"port_runner_runs_total", l("action", "fails", "result", "failure"), eq(1), "1"},
		{"port_runner_run_duration_seconds", l("action", "gated"), eq(3), "3 observations"},
		{"port_runner_run_duration_seconds", l("action", "fails"), eq(1), "1 observation"},
		{"port_runner_runs_in_flight", nil, eq(0), "0"},
		{"port_runner_runs_unclosed_total", nil, eq(1), "1"},
		{"port_runner_unsigned_messages_total", nil, eq(0), "0"},
		{"port_runner_messages_total", l("outcome", "accepted"), eq(4), "4"},
		{"port_runner_messages_total", l("outcome", "invalid"), eq(1), "1"},
		{"port_runner_messages_total", l("outcome", "ignored"), eq(1), "1"},
		{"port_runner_messages_total", l("outcome", "bad_signature"), eq(0), "0"},
		{"port_runner_messages_total", l("outcome", "duplicate"), eq(0), "0"},
		{"port_runner_port_requests_total", l("endpoint", portapi.EndpointRunLogs, "code", "200"), pos, "> 0"},
		{"port_runner_port_requests_total", l("code", "429"), eq(1), "1"},
		{"port_runner_port_requests_total", l("endpoint", portapi.EndpointRunLogs, "code", "422"), eq(2), "2"},
		{"port_runner_port_budget_remaining", nil, pos, "> 0"},
		{"port_runner_port_request_wait_seconds", l("priority", "close"), pos, "> 0 observations"},
		{"port_runner_log_bytes_total", nil, pos, "> 0"},
		{"port_runner_log_bytes_dropped_total", nil, eq(0), "0"},
		{"port_runner_executor_slots", l("state", "busy"), eq(0), "0"},
		{"port_runner_executor_slots", l("state", "free"), eq(4), "4"},
		{"port_runner_executor_capacity", nil, eq(4), "4"},
		{"port_runner_runs_waiting", l("action", "gated"), eq(0), "0"},
		{"port_runner_runs_waiting", l("action", "fails"), eq(0), "0"},
		{"port_runner_runs_waiting_oldest_seconds", nil, eq(0), "0"},
		{"port_runner_runs_closing_oldest_seconds", nil, eq(0), "0"},
		{"port_runner_ready", nil, eq(1), "1"},
		{"port_runner_build_info", l("goversion", runtime.Version()), eq(1), "1"},
		{"port_runner_consumer_lag_refresh_failed", nil, eq(0), "0"},
		{"go_goroutines", nil, pos, "> 0"},
		{"process_resident_memory_bytes", nil, pos, "> 0"},
		{"port_runner_kafka_connects_total", nil, pos, "> 0"},
		{"port_runner_kafka_read_bytes_total", nil, pos, "> 0"},
		{"port_runner_kafka_fetch_bytes_total", nil, pos, "> 0"},
		{"port_runner_kafka_buffered_fetch_records", nil, nil, "any"},
	}
	for p := range 2 {
		part := strconv.Itoa(p)
		wants = append(wants,
			want{"port_runner_consumer_lag", l("topic", h.Topic, "partition", part), eq(0), "0"},
			want{"port_runner_consumer_lag_seconds", l("topic", h.Topic, "partition", part), eq(0), "0"})
	}
	for _, w := range wants {
		ms := fams.Series(w.name, w.labels)
		if len(ms) == 0 {
			t.Errorf("/metrics has no %s%v", w.name, w.labels)
			continue
		}
		total := 0.0
		for _, m := range ms {
			total += harness.Value(m)
		}
		if w.check != nil && !w.check(total) {
			t.Errorf("%s%v = %v, want %s", w.name, w.labels, total, w.desc)
		}
	}
	// The labels that say which build runs are all there.
	for _, m := range fams.Series("port_runner_build_info", nil) {
		if !hasLabelNames(m, "version", "commit", "goversion") {
			t.Errorf("build_info labels %v", m.Label)
		}
	}
	// Of the priorities (close, log, claim, proxy, watch, check), a Kafka replica with no
	// leased or long runs waits only as these: claim is transport: polling's.
	for _, m := range fams.Series("port_runner_port_request_wait_seconds", nil) {
		if p := labelValue(m, "priority"); p != "close" && p != "log" && p != "proxy" {
			t.Errorf("port_request_wait_seconds priority %q, want close, log or proxy", p)
		}
	}
	for _, m := range fams.Series("port_runner_kafka_connects_total", nil) {
		if !hasLabelNames(m, "node_id") {
			t.Errorf("kafka connects_total labels %v", m.Label)
		}
	}
	if st := r.Status(t); len(st.Runs) != 0 || !st.Ready {
		t.Errorf("/status after the runs = %+v, want ready and no runs", st)
	}
	checkReadmeMetrics(t, fams)
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func hasLabelNames(m *dto.Metric, names ...string) bool {
	got := map[string]bool{}
	for _, l := range m.Label {
		got[l.GetName()] = l.GetValue() != ""
	}
	for _, n := range names {
		if !got[n] {
			return false
		}
	}
	return true
}

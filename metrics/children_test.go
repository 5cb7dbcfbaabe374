package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// What the hot paths count lands in the same series WithLabelValues reads.
func TestPerCallChildren(t *testing.T) {
	m := New()
	for range 2 {
		m.CountRun("deploy", "success")
		m.ObserveRunDuration("deploy", time.Second)
		m.CountMessages(OutcomeAccepted, 1)
		m.ObservePortRequest("run_logs", 200)
		m.ObservePortWait("close", time.Millisecond)
	}
	m.CountMessages(OutcomeSkippedBatch, 5)
	for name, got := range map[string]float64{
		"runs_total":          testutil.ToFloat64(m.RunsTotal.WithLabelValues("deploy", "success")),
		"messages_total":      testutil.ToFloat64(m.MessagesTotal.WithLabelValues(OutcomeAccepted)),
		"port_requests_total": testutil.ToFloat64(m.PortRequests.WithLabelValues("run_logs", "200")),
	} {
		if got != 2 {
			t.Errorf("%s = %v, want 2", name, got)
		}
	}
	if got := testutil.ToFloat64(m.MessagesTotal.WithLabelValues(OutcomeSkippedBatch)); got != 5 {
		t.Errorf("skipped_batch = %v, want 5", got)
	}
	if n := testutil.CollectAndCount(m.RunDuration) + testutil.CollectAndCount(m.PortRequestWait); n != 2 {
		t.Errorf("%d histogram series, want 2", n)
	}
}

// BenchmarkPerRunMetrics is what one quiet run counts: its message, its run and duration,
// its closing request and that request's wait.
func BenchmarkPerRunMetrics(b *testing.B) {
	m := New()
	b.ReportAllocs()
	for b.Loop() {
		m.CountMessages(OutcomeAccepted, 1)
		m.CountRun("deploy", "success")
		m.ObserveRunDuration("deploy", time.Millisecond)
		m.ObservePortRequest("run_logs", 200)
		m.ObservePortWait("close", time.Millisecond)
	}
}

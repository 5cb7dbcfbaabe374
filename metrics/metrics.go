// Package metrics holds the agent's Prometheus collectors and serves /metrics, /healthz and
// /readyz. The stages never import it: the wiring hands them small funcs.
package metrics

import (
	"context"
	"fmt"
	"net/http"
	"net/http/pprof"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/port-runner/port-runner/internal/httpserve"
)

// Metrics is one agent's collectors, on a registry of its own (several agents can live in
// one test process).
type Metrics struct {
	Registry        *prometheus.Registry
	RunsTotal       *prometheus.CounterVec
	RunDuration     *prometheus.HistogramVec
	RunsInFlight    prometheus.Gauge
	MessagesTotal   *prometheus.CounterVec
	PortRequests    *prometheus.CounterVec
	LogBytes        prometheus.Counter
	LogBytesDropped prometheus.Counter
	ConsumerLag     *prometheus.GaugeVec
	// Pprof serves net/http/pprof under /debug/pprof/ beside /metrics (config metrics.pprof):
	// opt-in, since profiles show the agent's internals to whoever reaches the port.
	Pprof bool
	// UnsignedMessages counts messages of configured actions skipped for carrying no
	// signature while security.verifySignature is on: a nonzero value is a setup problem.
	UnsignedMessages prometheus.Counter
}

// Message outcomes, SPEC "Observability".
const (
	OutcomeAccepted     = "accepted"
	OutcomeIgnored      = "ignored"
	OutcomeInvalid      = "invalid"
	OutcomeBadSignature = "bad_signature"
	OutcomeDuplicate    = "duplicate"
)

func New() *Metrics {
	const ns = "port_runner"
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		RunsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "runs_total",
			Help: "Runs executed, by action and result (success, failure)."}, []string{"action", "result"}),
		RunDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "run_duration_seconds",
			Help:    "How long runs' commands took.",
			Buckets: []float64{0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600}}, []string{"action"}),
		RunsInFlight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "runs_in_flight",
			Help: "Runs executing now."}),
		MessagesTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "messages_total",
			Help: "Run messages consumed, by outcome."}, []string{"outcome"}),
		PortRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "port_requests_total",
			Help: "HTTP requests to Port's API, by endpoint and status code (0: network error)."}, []string{"endpoint", "code"}),
		LogBytes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "log_bytes_total",
			Help: "Bytes of command output taken into runs' logs."}),
		LogBytesDropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "log_bytes_dropped_total",
			Help: "Bytes of command output dropped past logs.maxBytesPerRun."}),
		ConsumerLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "consumer_lag",
			Help: "Messages not yet committed, per owned partition."}, []string{"partition"}),
		UnsignedMessages: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "unsigned_messages_total",
			Help: "Unsigned messages of configured actions skipped because security.verifySignature is on."}),
	}
	m.Registry.MustRegister(m.RunsTotal, m.RunDuration, m.RunsInFlight, m.MessagesTotal, m.PortRequests,
		m.LogBytes, m.LogBytesDropped, m.ConsumerLag, m.UnsignedMessages,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, o := range []string{OutcomeAccepted, OutcomeIgnored, OutcomeInvalid, OutcomeBadSignature, OutcomeDuplicate} {
		m.MessagesTotal.WithLabelValues(o) // present at zero, so alerts on rate() work from the start
	}
	return m
}

// ObservePortRequest counts one HTTP attempt to Port.
func (m *Metrics) ObservePortRequest(endpoint string, code int) {
	m.PortRequests.WithLabelValues(endpoint, strconv.Itoa(code)).Inc()
}

// ObserveLags sets the lag of every partition this replica owns; partitions it no longer
// owns lose their series instead of showing a stale value forever.
func (m *Metrics) ObserveLags(lags map[int32]int64) {
	m.ConsumerLag.Reset()
	for p, lag := range lags {
		m.ConsumerLag.WithLabelValues(strconv.Itoa(int(p))).Set(float64(lag))
	}
}

// Handler serves /metrics, /healthz (alive) and /readyz (ready() == nil).
func (m *Metrics) Handler(ready func() error) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	if m.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index) // also the named profiles: heap, goroutine...
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// Serve listens on addr until ctx is done. It returns the bound address (addr may use port
// 0) and a wait func that returns once the server has stopped.
func (m *Metrics) Serve(ctx context.Context, addr string, ready func() error) (string, func() error, error) {
	bound, wait, err := httpserve.Serve(ctx, addr, m.Handler(ready))
	if err != nil {
		return "", nil, fmt.Errorf("metrics: %w", err)
	}
	return bound, wait, nil
}

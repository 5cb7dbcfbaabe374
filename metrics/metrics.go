// Package metrics holds the agent's Prometheus registry and collectors and serves /metrics,
// /healthz, /readyz and /status. The stages never import it: the wiring hands them small
// funcs, and the agent shows its live state through a Source.
package metrics

import (
	"context"
	"fmt"
	"net/http"
	"net/http/pprof"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

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
	// BuildInfo is 1 with the binary's version, commit and Go version as labels.
	BuildInfo *prometheus.GaugeVec
	// PortBudgetRemaining is what Port's latest answer said is left of the organization's
	// API budget (x-ratelimit-remaining), shared with every other replica and integration.
	// It is registered at the first such answer: before it there is no figure, and a 0
	// would read as a spent budget.
	PortBudgetRemaining prometheus.Gauge
	budgetKnown         sync.Once
	// PortRequestWait is the time requests waited for their turn to Port (budget pacing,
	// the requestsPerSecond ceiling, a 429's hold), by priority: close, log, claim, proxy, watch,
	// check (portapi.Priority, most urgent first).
	PortRequestWait *prometheus.HistogramVec
	// Pprof serves net/http/pprof under /debug/pprof/ beside /metrics (config metrics.pprof):
	// opt-in, since profiles show the agent's internals to whoever reaches the port.
	Pprof bool
	// UnsignedMessages counts messages of configured actions skipped for carrying no
	// signature while security.verifySignature is on: a nonzero value is a setup problem.
	UnsignedMessages prometheus.Counter
	// RunsUnclosed counts runs Port refused to close even with the minimal fallback body:
	// they stay open in Port, so someone must look (the log line has Port's answer).
	RunsUnclosed prometheus.Counter

	// perCall: the children of the vectors above that runs and requests count into.
	perCall perCall

	// attached: collectors of the running agent (its lag collector, franz-go's client
	// metrics, its Source), by name; the latest attached under a name wins, so two agents
	// sharing one Metrics in a test never export a series twice.
	mu       sync.Mutex
	attached map[string]*attachment
	source   *sourceAttachment
	// replicaName and version are who answers /status.
	replicaName, version string
}

// Message outcomes: the outcome label of messages_total (README "Observability").
const (
	OutcomeAccepted     = "accepted"
	OutcomeIgnored      = "ignored"
	OutcomeInvalid      = "invalid"
	OutcomeBadSignature = "bad_signature"
	OutcomeDuplicate    = "duplicate"
	OutcomeFiltered     = "filtered"  // its action's when left it to another deployment
	OutcomeUnmatched    = "unmatched" // a workflow node run no action's workflowNode matches
	// OutcomeSkippedBatch counts the offsets of a fetched batch that did not decompress
	// within kafka.maxDecompressBatchBytes: its runs were not read, so not executed.
	OutcomeSkippedBatch = "skipped_batch"
)

const ns = "port_runner"

func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		RunsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "runs_total",
			Help: "Runs executed, by action and result (success, failure, cancelled_in_port)."}, []string{"action", "result"}),
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
		PortBudgetRemaining: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "port_budget_remaining",
			Help: "Requests left in the organization's Port API budget window, as Port's latest answer said (x-ratelimit-remaining)."}),
		PortRequestWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "port_request_wait_seconds",
			Help:    "Time a request to Port waited for its turn (budget, ceiling, 429 hold), by priority.",
			Buckets: []float64{0.001, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60}}, []string{"priority"}),
		UnsignedMessages: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "unsigned_messages_total",
			Help: "Unsigned messages of configured actions skipped because security.verifySignature is on."}),
		RunsUnclosed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "runs_unclosed_total",
			Help: "Runs Port refused to close, even with the minimal fallback closing request."}),
		BuildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "build_info",
			Help: "Always 1; the labels say which build runs."}, []string{"version", "commit", "goversion"}),
		attached:    map[string]*attachment{},
		replicaName: replicaName(),
	}
	m.Registry.MustRegister(m.RunsTotal, m.RunDuration, m.RunsInFlight, m.MessagesTotal, m.PortRequests,
		m.LogBytes, m.LogBytesDropped, m.BuildInfo, m.UnsignedMessages, m.RunsUnclosed, attachedCollector{m},
		m.PortRequestWait,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, o := range []string{OutcomeAccepted, OutcomeIgnored, OutcomeInvalid, OutcomeBadSignature, OutcomeDuplicate, OutcomeFiltered, OutcomeUnmatched, OutcomeSkippedBatch} {
		m.MessagesTotal.WithLabelValues(o) // present at zero, so alerts on rate() work from the start
	}
	m.SetVersion("")
	return m
}

// SetVersion sets build_info's version ("" keeps the module's own, "(devel)" when built
// from a checkout); the commit is the one the Go toolchain stamped, if any.
func (m *Metrics) SetVersion(version string) {
	commit := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if version == "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				commit = s.Value
			}
		}
	}
	if version == "" {
		version = "unknown"
	}
	m.mu.Lock()
	m.version = version
	m.mu.Unlock()
	m.BuildInfo.Reset()
	m.BuildInfo.WithLabelValues(version, commit, runtime.Version()).Set(1)
}

// ObservePortBudget records what Port says remains of the organization's budget.
func (m *Metrics) ObservePortBudget(remaining int) {
	m.PortBudgetRemaining.Set(float64(remaining))
	m.budgetKnown.Do(func() { m.Registry.MustRegister(m.PortBudgetRemaining) })
}

// Attach adds a running agent's collector under name (replacing one attached before under
// it) and returns detach, which removes it if it is still the one attached.
func (m *Metrics) Attach(name string, c prometheus.Collector) (detach func()) {
	at := &attachment{c} // its identity, not the collector's, says who is attached
	m.mu.Lock()
	defer m.mu.Unlock()
	m.attached[name] = at
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.attached[name] == at {
			delete(m.attached, name)
		}
	}
}

type attachment struct{ c prometheus.Collector }

// attachedCollector forwards to the attached collectors. Their series come and go with
// agents and partitions, so it describes nothing (an unchecked collector).
type attachedCollector struct{ m *Metrics }

func (a attachedCollector) Describe(chan<- *prometheus.Desc) {}

func (a attachedCollector) Collect(ch chan<- prometheus.Metric) {
	a.m.mu.Lock()
	cs := make([]prometheus.Collector, 0, len(a.m.attached))
	for _, at := range a.m.attached {
		cs = append(cs, at.c)
	}
	a.m.mu.Unlock()
	for _, c := range cs {
		c.Collect(ch)
	}
}

// Handler serves /metrics, /healthz (alive), /readyz (ready() == nil) and /status.
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
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		m.serveStatus(w, r, ready)
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

// since is how old t is, in seconds; 0 for the zero time.
func since(now, t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return max(now.Sub(t).Seconds(), 0)
}

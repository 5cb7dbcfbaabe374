package metrics

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// children keeps the children of a metric vector that the agent asks for on every run or
// every request to Port: WithLabelValues checks and hashes the label values and looks them
// up under the vector's lock on each call. The vectors served this way never delete a child.
type children[K comparable, M any] struct {
	mu    sync.RWMutex
	byKey map[K]M
}

// get is the child for k, made by mk the first time.
func (c *children[K, M]) get(k K, mk func() M) M {
	c.mu.RLock()
	m, ok := c.byKey[k]
	c.mu.RUnlock()
	if ok {
		return m
	}
	m = mk()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byKey == nil {
		c.byKey = map[K]M{}
	}
	c.byKey[k] = m // two first calls store the same child: WithLabelValues gives one per values
	return m
}

// labelled is a metric vector: WithLabelValues gives its child for the label values.
type labelled[M any] interface {
	WithLabelValues(lvs ...string) M
}

// child is the child of v, a vector of one label, for value, looked up in v once.
func child[M any](c *children[string, M], v labelled[M], value string) M {
	return c.get(value, func() M { return v.WithLabelValues(value) })
}

type runKey struct{ action, result string }

type requestKey struct {
	endpoint string
	code     int
}

// perCall are the children the hot paths use, by their label values.
type perCall struct {
	runs      children[runKey, prometheus.Counter]
	durations children[string, prometheus.Observer]
	messages  children[string, prometheus.Counter]
	requests  children[requestKey, prometheus.Counter]
	waits     children[string, prometheus.Observer]
}

// CountRun adds a run to runs_total{action, result}.
func (m *Metrics) CountRun(action, result string) {
	m.perCall.runs.get(runKey{action, result}, func() prometheus.Counter {
		return m.RunsTotal.WithLabelValues(action, result)
	}).Inc()
}

// ObserveRunDuration adds how long a run's command took to run_duration_seconds{action}.
func (m *Metrics) ObserveRunDuration(action string, d time.Duration) {
	child(&m.perCall.durations, m.RunDuration, action).Observe(d.Seconds())
}

// CountMessages adds n messages to messages_total{outcome}.
func (m *Metrics) CountMessages(outcome string, n float64) {
	child(&m.perCall.messages, m.MessagesTotal, outcome).Add(n)
}

// ObservePortRequest counts one HTTP attempt to Port.
func (m *Metrics) ObservePortRequest(endpoint string, code int) {
	m.perCall.requests.get(requestKey{endpoint, code}, func() prometheus.Counter {
		return m.PortRequests.WithLabelValues(endpoint, strconv.Itoa(code))
	}).Inc()
}

// ObservePortWait records how long one request waited for its turn.
func (m *Metrics) ObservePortWait(priority string, d time.Duration) {
	child(&m.perCall.waits, m.PortRequestWait, priority).Observe(d.Seconds())
}

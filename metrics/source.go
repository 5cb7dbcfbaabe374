package metrics

import (
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Run states a Source reports. runs_waiting counts StateWaiting; the lifecycle may report
// others (they show in /status as they are).
const (
	StateWaiting = "waiting" // handed to this replica, its command not started yet
	StateRunning = "running"
	StateClosing = "closing" // the command ended; the run's closing request is under way
	// StateAwaiting: another replica holds the run under a lease (README "Delivery"); this
	// one decides it once that lease ends, or skips it once Port shows it ended.
	StateAwaiting = "awaiting"
)

// Leases a Run shows: LeaseHeld, this replica holds the run under its lease though the
// run's partition went to another replica (a handover); LeaseAwaited, another replica
// (Run.Holder) does.
const (
	LeaseHeld    = "held"
	LeaseAwaited = "awaited"
)

// Run is one run this replica holds, as /status shows it.
type Run struct {
	RunID     string    `json:"runId"`
	Action    string    `json:"action"`
	State     string    `json:"state"`
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Received  time.Time `json:"received"`            // when this replica got it
	Started   time.Time `json:"started,omitzero"`    // when its command started
	Ended     time.Time `json:"ended,omitzero"`      // when its command ended (closing since)
	PID       int       `json:"pid,omitempty"`       // the command's process (its shim, where one is used)
	LastLines []string  `json:"lastLines,omitempty"` // the end of its log, masked as Port sees it
	Step      string    `json:"step"`                // where it is in the run lifecycle
	Lease     string    `json:"lease,omitempty"`     // LeaseHeld or LeaseAwaited
	Holder    string    `json:"holder,omitempty"`    // LeaseAwaited: the replica holding it
	Outcome   string    `json:"outcome,omitempty"`   // known before the run ends: "cancelled in Port"
}

// Snapshot is the agent's live state at one moment.
type Snapshot struct {
	SlotsBusy     int
	SlotsCapacity int
	Actions       []string // the configured actions: runs_waiting has a series for each
	Runs          []Run
	Topic         string
	Partitions    []int32    // the topic's partitions this replica owns now
	Finished      []Finished // the last runs it finished
	Isolation     *Isolation // nil: not known
}

// Isolation is how the replica confines its runs' commands (README "Isolation"): settled
// at start, from the config and what the kernel offers.
type Isolation struct {
	Sandbox     string   `json:"sandbox"`     // executor.sandbox: auto, required, off
	Protections []string `json:"protections"` // in force
	Missing     []string `json:"missing"`     // not in force on this machine or with this config
	LandlockABI int      `json:"landlockABI"` // the kernel's (0: no Landlock)
	Shim        string   `json:"shim"`        // which exec shim runs commands
	Notes       []string `json:"notes,omitempty"`
}

// Source is what the running agent shows: the pool, the runs it holds, its readiness.
type Source interface {
	Snapshot() Snapshot
	Ready() error
}

// SetSource makes s the agent whose state the saturation metrics and /status show, until
// the returned detach is called.
func (m *Metrics) SetSource(s Source) (detach func()) {
	sa := &sourceAttachment{s}
	m.mu.Lock()
	m.source = sa
	m.mu.Unlock()
	stop := m.Attach("source", sourceCollector{s})
	return func() {
		stop()
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.source == sa {
			m.source = nil
		}
	}
}

type sourceAttachment struct{ s Source }

func (m *Metrics) currentSource() Source {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.source == nil {
		return nil
	}
	return m.source.s
}

var (
	slotsDesc = prometheus.NewDesc(ns+"_executor_slots",
		"The pool's slots: busy (held by a run, waiting or running) and free.", []string{"state"}, nil)
	capacityDesc = prometheus.NewDesc(ns+"_executor_capacity",
		"executor.maxConcurrent: how many runs this replica executes at once.", nil, nil)
	waitingDesc = prometheus.NewDesc(ns+"_runs_waiting",
		"Runs this replica holds whose command has not started (waiting for an action slot, a Port lookup or their start mark), by action. Messages not polled yet are consumer_lag.", []string{"action"}, nil)
	oldestWaitingDesc = prometheus.NewDesc(ns+"_runs_waiting_oldest_seconds",
		"How long the oldest run this replica holds has waited for its command to start (0: none waits).", nil, nil)
	closingDesc = prometheus.NewDesc(ns+"_runs_closing_oldest_seconds",
		"How long the oldest run whose command ended has waited for Port to take its closing request (0: none).", nil, nil)
	protectionDesc = prometheus.NewDesc(ns+"_isolation_protection",
		"1 for each protection in force for runs' commands on this replica, 0 for one that is not (README \"Isolation\").", []string{"protection"}, nil)
	readyDesc = prometheus.NewDesc(ns+"_ready",
		"1 when /readyz says ready (group joined, Port token valid), else 0.", nil, nil)
)

type sourceCollector struct{ s Source }

func (sourceCollector) Describe(chan<- *prometheus.Desc) {}

func (c sourceCollector) Collect(ch chan<- prometheus.Metric) {
	snap := c.s.Snapshot()
	ch <- prometheus.MustNewConstMetric(slotsDesc, prometheus.GaugeValue, float64(snap.SlotsBusy), "busy")
	ch <- prometheus.MustNewConstMetric(slotsDesc, prometheus.GaugeValue, float64(max(snap.SlotsCapacity-snap.SlotsBusy, 0)), "free")
	ch <- prometheus.MustNewConstMetric(capacityDesc, prometheus.GaugeValue, float64(snap.SlotsCapacity))
	waiting := map[string]int{}
	for _, a := range snap.Actions {
		waiting[a] = 0
	}
	now := time.Now()
	oldest, closing := 0.0, 0.0
	for _, r := range snap.Runs {
		switch r.State {
		case StateWaiting:
			waiting[r.Action]++
			oldest = max(oldest, since(now, r.Received))
		case StateClosing:
			closing = max(closing, since(now, r.Ended))
		}
	}
	actions := make([]string, 0, len(waiting))
	for a := range waiting {
		actions = append(actions, a)
	}
	sort.Strings(actions)
	for _, a := range actions {
		ch <- prometheus.MustNewConstMetric(waitingDesc, prometheus.GaugeValue, float64(waiting[a]), a)
	}
	ch <- prometheus.MustNewConstMetric(oldestWaitingDesc, prometheus.GaugeValue, oldest)
	ch <- prometheus.MustNewConstMetric(closingDesc, prometheus.GaugeValue, closing)
	if iso := snap.Isolation; iso != nil {
		for _, p := range iso.Protections {
			ch <- prometheus.MustNewConstMetric(protectionDesc, prometheus.GaugeValue, 1, p)
		}
		for _, p := range iso.Missing {
			ch <- prometheus.MustNewConstMetric(protectionDesc, prometheus.GaugeValue, 0, p)
		}
	}
	ready := 0.0
	if c.s.Ready() == nil {
		ready = 1
	}
	ch <- prometheus.MustNewConstMetric(readyDesc, prometheus.GaugeValue, ready)
}

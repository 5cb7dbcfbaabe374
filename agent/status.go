package agent

import (
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/port-runner/port-runner/metrics"
)

// tailLines and tailLineBytes bound what /status keeps of each run's log.
const (
	tailLines     = 5
	tailLineBytes = 512
)

// tracker is the runs this replica holds, for /status and runs_waiting: the lifecycle
// reports each run's steps to it, and nothing reads it back into the lifecycle.
type tracker struct {
	mu   sync.Mutex
	runs map[*tracked]bool
}

type tracked struct {
	t   *tracker
	run metrics.Run // guarded by t.mu
}

func newTracker() *tracker { return &tracker{runs: map[*tracked]bool{}} }

// add holds a run from its record on, in state waiting, until its done is called.
func (tr *tracker) add(rec *kgo.Record, runID, action string) *tracked {
	r := &tracked{t: tr, run: metrics.Run{
		RunID: runID, Action: action, State: metrics.StateWaiting,
		Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Received: time.Now(),
	}}
	tr.mu.Lock()
	tr.runs[r] = true
	tr.mu.Unlock()
	return r
}

func (r *tracked) done() {
	r.t.mu.Lock()
	delete(r.t.runs, r)
	r.t.mu.Unlock()
}

// closing: the command ended (or never started); the closing request is under way.
func (r *tracked) closing() {
	if r == nil {
		return
	}
	r.t.mu.Lock()
	r.run.State, r.run.Ended = metrics.StateClosing, time.Now()
	r.t.mu.Unlock()
}

// started is called from the executor's OnStart (execute.go): the command runs, as pid.
// A nil run (try) ignores it, like closing.
func (r *tracked) started(pid int) {
	if r == nil {
		return
	}
	r.t.mu.Lock()
	r.run.State, r.run.Started, r.run.PID = metrics.StateRunning, time.Now(), pid
	r.t.mu.Unlock()
}

// line keeps the last lines of the running copy of runID (masked by the reporter).
func (tr *tracker) line(runID, line string) {
	if len(line) > tailLineBytes {
		line = line[:tailLineBytes] + "…"
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for r := range tr.runs {
		if r.run.RunID == runID && r.run.State != metrics.StateWaiting {
			r.run.LastLines = append(r.run.LastLines, line)
			if n := len(r.run.LastLines); n > tailLines {
				r.run.LastLines = append([]string(nil), r.run.LastLines[n-tailLines:]...)
			}
			return
		}
	}
}

func (tr *tracker) list() []metrics.Run {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	out := make([]metrics.Run, 0, len(tr.runs))
	for r := range tr.runs {
		run := r.run
		run.LastLines = append([]string(nil), r.run.LastLines...)
		out = append(out, run)
	}
	return out
}

// source is the agent as metrics.Source.
type source struct {
	a     *Agent
	ready func() error
}

// Snapshot counts the pool's running slots taken: a run takes one once its action's own
// limit lets it start, and holds it until it is closed. (Runs queued for their action's
// limit, and the consumer's reservations while it waits for records, hold admissions, not
// slots: an idle replica shows free.)
func (s source) Snapshot() metrics.Snapshot {
	runs := s.a.tracker.list()
	return metrics.Snapshot{
		SlotsBusy: s.a.pool.InUse(), SlotsCapacity: s.a.cfg.Executor.MaxConcurrent,
		Actions: s.a.cfg.ActionNames(), Runs: runs,
	}
}

func (s source) Ready() error { return s.ready() }

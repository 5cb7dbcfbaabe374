package agent

import (
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/port-runner/port-runner/metrics"
)

// phase is where one run is in its life on this replica: the steps of run.go reach them. A
// run only moves forward; it may leave at any phase (skipped, left for the next holder, or
// done).
type phase int

const (
	phaseReceived     phase = iota // decoded, and its action is configured here
	phaseClaimed                   // this handler holds the run id (no second copy runs here)
	phaseAwaiting                  // an earlier holder may still act on it: waiting for its end
	phaseAsking                    // asking Port whether it was closed
	phaseAdmitted                  // to run here: waiting for its slot
	phaseStartDurable              // its lease is taken: the start mark is committed
	phaseRunning                   // its command runs (from the executor's OnStart)
	phaseCommandEnded              // the command ended (or never started); the run is being closed in Port
	phaseClosed                    // Port has the run's termination
	phaseCommittable               // its record may be committed past
	numPhases
)

var phaseNames = [numPhases]string{"received", "claimed", "awaiting", "asking", "admitted", "start_durable",
	"running", "command_ended", "closed", "committable"}

func (p phase) String() string { return phaseNames[p] }

// state is the phase as /status and the saturation metrics name it.
func (p phase) state() string {
	switch {
	case p == phaseAwaiting:
		return metrics.StateAwaiting
	case p < phaseRunning:
		return metrics.StateWaiting
	case p == phaseRunning:
		return metrics.StateRunning
	default:
		return metrics.StateClosing
	}
}

// tailLines and tailLineBytes bound what /status keeps of each run's log.
const (
	tailLines     = 5
	tailLineBytes = 512
)

// lives is every run this replica holds, each with its one owner (a runLife). It is the one
// record of where runs are: shutdown, /status, runs_in_flight, runs_waiting and
// executor_slots all read it.
type lives struct {
	mu        sync.Mutex
	runs      map[*runLife]struct{}
	counts    [numPhases]int
	slots     int             // runs holding one of the pool's running slots
	onRunning func(delta int) // runs entering (+1) or leaving (-1) phaseRunning
	finished  finishedRuns    // the last runs finished here (/status)
}

func newLives(onRunning func(int)) *lives {
	return &lives{runs: map[*runLife]struct{}{}, onRunning: onRunning}
}

// runLife is one run's place in its lifecycle; its handler is its only writer.
type runLife struct {
	l          *lives
	id, action string
	lease      runLease // what the run's lease says now (/status: held here after a handover)
	// guarded by l.mu:
	ph      phase
	slot    bool        // holds a pool slot
	view    metrics.Run // what /status shows; State is derived from ph
	success bool        // the run's result (result)
	label   string
	closed  bool // Port took its termination (a run Port refused is let go unclosed, committable)
}

// runAt is a run's record: its partition and offset (try has none).
type runAt struct {
	topic     string
	partition int32
	offset    int64
}

// receive starts tracking a run held under lease.
func (l *lives) receive(at runAt, id, action string, lease runLease) *runLife {
	r := &runLife{l: l, id: id, action: action, lease: lease, ph: phaseReceived, view: metrics.Run{
		RunID: id, Action: action, Topic: at.topic, Partition: at.partition, Offset: at.offset, Received: time.Now(),
	}}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.runs[r] = struct{}{}
	l.counts[phaseReceived]++
	return r
}

// to moves the run forward to p; a step back is ignored (a phase is a fact that happened).
func (r *runLife) to(p phase) {
	if r == nil {
		return
	}
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	r.toLocked(p)
}

func (r *runLife) toLocked(p phase) {
	if _, ok := r.l.runs[r]; !ok || p <= r.ph {
		return
	}
	switch p {
	case phaseRunning:
		r.view.Started = time.Now()
	case phaseCommandEnded:
		r.view.Ended = time.Now()
	case phaseClosed:
		r.closed = true
	}
	r.l.move(r.ph, p)
	r.ph = p
}

// started is the executor's OnStart: the command runs, as pid.
func (r *runLife) started(pid int) {
	if r == nil {
		return
	}
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	r.view.PID = pid
	r.toLocked(phaseRunning)
}

// holdSlot and dropSlot bracket the run's hold on a pool slot (executor_slots).
func (r *runLife) holdSlot() { r.setSlot(true) }
func (r *runLife) dropSlot() { r.setSlot(false) }

func (r *runLife) setSlot(held bool) {
	if r == nil {
		return
	}
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	if _, ok := r.l.runs[r]; !ok || r.slot == held {
		return
	}
	r.slot = held
	if held {
		r.l.slots++
	} else {
		r.l.slots--
	}
}

// leave stops tracking the run, in whatever phase it is.
func (r *runLife) leave() {
	if r == nil {
		return
	}
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	if _, ok := r.l.runs[r]; !ok {
		return
	}
	if r.slot {
		r.slot = false
		r.l.slots--
	}
	r.finishedLocked()
	delete(r.l.runs, r)
	r.l.move(r.ph, numPhases)
}

// move counts a run leaving from and entering to (numPhases: leaving for good); l.mu is held.
func (l *lives) move(from, to phase) {
	l.counts[from]--
	if to < numPhases {
		l.counts[to]++
	}
	if l.onRunning != nil {
		if to == phaseRunning {
			l.onRunning(1)
		} else if from == phaseRunning {
			l.onRunning(-1)
		}
	}
}

// phases is how many runs are in each phase now, as a log field.
func (l *lives) phases() zap.Field {
	l.mu.Lock()
	counts := l.counts
	l.mu.Unlock()
	return zap.Object("runs", zapcore.ObjectMarshalerFunc(func(enc zapcore.ObjectEncoder) error {
		for p, n := range counts {
			if n > 0 {
				enc.AddInt(phase(p).String(), n)
			}
		}
		return nil
	}))
}

// count is how many runs are in phase p now.
func (l *lives) count(p phase) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts[p]
}

// slotsBusy is how many runs hold a pool slot now.
func (l *lives) slotsBusy() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.slots
}

// line keeps the last lines of the running (or closing) copy of runID, masked by the
// reporter, for /status.
func (l *lives) line(runID, line string) {
	if len(line) > tailLineBytes {
		line = line[:tailLineBytes] + "…"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for r := range l.runs {
		if r.id == runID && r.ph >= phaseRunning {
			r.view.LastLines = append(r.view.LastLines, line)
			if n := len(r.view.LastLines); n > tailLines {
				r.view.LastLines = append([]string(nil), r.view.LastLines[n-tailLines:]...)
			}
			return
		}
	}
}

// list is every run held now, as /status shows it.
func (l *lives) list() []metrics.Run {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]metrics.Run, 0, len(l.runs))
	for r := range l.runs {
		run := r.view
		run.State, run.Step = r.ph.state(), r.ph.String()
		if r.lease != nil {
			run.Lease, run.Holder = r.lease.shown()
		}
		run.LastLines = append([]string(nil), r.view.LastLines...)
		out = append(out, run)
	}
	return out
}

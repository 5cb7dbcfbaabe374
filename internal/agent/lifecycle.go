package agent

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/port-runner/port-runner/metrics"
)

// phase is where one run is in its life on this replica. A run only moves forward; it may
// leave at any phase (skipped, left for redelivery, or done).
type phase int

const (
	phaseReceived     phase = iota // decoded, and its action is configured here
	phaseClaimed                   // this handler holds the run id (no second copy runs here)
	phaseStartDurable              // its start mark is committed: the next owner would know
	phaseRunning                   // its command runs (from the executor's OnStart)
	phaseCommandEnded              // the command ended (or never started); the run is being closed in Port
	phaseClosed                    // Port has the run's termination
	phaseCommittable               // its record may be committed past
	numPhases
)

var phaseNames = [numPhases]string{"received", "claimed", "start_durable", "running", "command_ended", "closed", "committable"}

func (p phase) String() string { return phaseNames[p] }

// state is the phase as /status and the saturation metrics name it.
func (p phase) state() string {
	switch {
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
// record of where runs are: shutdown, the consumer's revoke (consumer.Runs), /status,
// runs_in_flight, runs_waiting and executor_slots all read it.
type lives struct {
	mu        sync.Mutex
	runs      map[*runLife]struct{}
	counts    [numPhases]int
	slots     int             // runs holding one of the pool's running slots
	changed   chan struct{}   // closed and replaced at every change (consumer.Runs)
	onRunning func(delta int) // runs entering (+1) or leaving (-1) phaseRunning
	finished  finishedRuns    // the last runs finished here (/status)
}

func newLives(onRunning func(int)) *lives {
	return &lives{runs: map[*runLife]struct{}{}, changed: make(chan struct{}), onRunning: onRunning}
}

// runLife is one run's place in its lifecycle; its handler is its only writer.
type runLife struct {
	l          *lives
	id, action string
	// handover is done once the run's partition is being handed to another member: from
	// then on nothing of the run may start or go on past its budgets here. nil: the run
	// has no partition (try).
	handover context.Context
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

// receive starts tracking a run of a partition whose hand-over ends handover.
func (l *lives) receive(at runAt, id, action string, handover context.Context) *runLife {
	r := &runLife{l: l, id: id, action: action, handover: handover, ph: phaseReceived, view: metrics.Run{
		RunID: id, Action: action, Topic: at.topic, Partition: at.partition, Offset: at.offset, Received: time.Now(),
	}}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.runs[r] = struct{}{}
	l.counts[phaseReceived]++
	l.notify()
	return r
}

// ours says whether the run's partition is still this replica's, with no hand-over begun.
func (r *runLife) ours() bool {
	return r != nil && r.handover != nil && r.handover.Err() == nil
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
	l.notify()
}

// notify wakes whoever waits for a change; l.mu is held.
func (l *lives) notify() {
	close(l.changed)
	l.changed = make(chan struct{})
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
		run.State = r.ph.state()
		run.LastLines = append([]string(nil), r.view.LastLines...)
		out = append(out, run)
	}
	return out
}

// Holding implements consumer.Runs: how many runs of the partition this replica still holds
// that may run or are being closed (from their start mark on, not yet committable). A run
// that has not made its start mark durable never starts once the hand-over began.
func (l *lives) Holding(topic string, partition int32) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for r := range l.runs {
		if r.view.Topic == topic && r.view.Partition == partition && r.ph >= phaseStartDurable && r.ph < phaseCommittable {
			n++
		}
	}
	return n
}

// Changed implements consumer.Runs: closed at the next change of any run.
func (l *lives) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

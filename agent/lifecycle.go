package agent

import (
	"context"
	"sync"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// phase is where one run is in its life on this replica. A run only moves forward; it may
// leave at any phase (skipped, left for redelivery, or done).
type phase int

const (
	phaseReceived     phase = iota // decoded, and its action is configured here
	phaseClaimed                   // this handler holds the run id (no second copy runs here)
	phaseStartDurable              // its start mark is committed: the next owner would know
	phaseRunning                   // its command runs
	phaseCommandEnded              // the command ended; the run is being closed in Port
	phaseClosed                    // Port has the run's termination
	phaseCommittable               // its record may be committed past
	numPhases
)

var phaseNames = [numPhases]string{"received", "claimed", "start_durable", "running", "command_ended", "closed", "committable"}

func (p phase) String() string { return phaseNames[p] }

// lives is every run this replica holds, each with its one owner (a runLife): shutdown and
// the logs ask it where runs are, and runs_in_flight is the number in phaseRunning.
type lives struct {
	mu        sync.Mutex
	runs      map[*runLife]struct{}
	counts    [numPhases]int
	onRunning func(delta int) // runs entering (+1) or leaving (-1) phaseRunning
}

func newLives(onRunning func(int)) *lives {
	return &lives{runs: map[*runLife]struct{}{}, onRunning: onRunning}
}

// runLife is one run's place in its lifecycle; its handler is its only writer.
type runLife struct {
	l          *lives
	id, action string
	// handover is done once the run's partition is being handed to another member: from
	// then on nothing of the run may start or go on past its budgets here.
	handover context.Context
	ph       phase // guarded by l.mu
}

// receive starts tracking a run of a partition whose hand-over ends handover.
func (l *lives) receive(id, action string, handover context.Context) *runLife {
	r := &runLife{l: l, id: id, action: action, handover: handover, ph: phaseReceived}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.runs[r] = struct{}{}
	l.counts[phaseReceived]++
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
	if _, ok := r.l.runs[r]; !ok || p <= r.ph {
		return
	}
	r.l.move(r.ph, p)
	r.ph = p
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

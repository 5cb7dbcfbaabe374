package agent

import (
	"runtime"
	"time"

	"github.com/port-runner/port-runner/reporter"
)

// pendingTake is a run's take under way (take): its own goroutine takes the lease while the
// run's handler readies the run, and the handler waits for it (took) before the command may
// start, and in every case before the run goes on: the goroutine never outlives execute.
type pendingTake struct {
	done  chan struct{}
	err   error     // the take's, once done is closed
	seen  bool      // took acted on it (the handler's alone)
	began time.Time // when it started (askHeld)
}

// startTake starts taking r's lease (runLease.take) with bound.
func startTake(r *run, bound time.Duration) *pendingTake {
	p := &pendingTake{done: make(chan struct{}), began: time.Now()}
	go func() {
		defer close(p.done)
		p.err = r.lease.take(r.stop, bound)
	}()
	// The take's commit leaves now, not once the run is readied: a new goroutine waits until
	// this one blocks, and readying the run holds its processor for most of a millisecond (the
	// shim's fork keeps it), which put the start mark's round trip that much later in every
	// dispatch (BENCHMARKS.md "The start mark leaves first").
	runtime.Gosched()
	return p
}

// took waits for r's take and, the first time, acts on it: taken, the run is this replica's
// from now on (its start mark is durable: phaseStartDurable, its way in's memory); not
// taken, it says why the run is left. nil: the command may start. It is the executor's gate
// (executor.Spec.Gate, through runGate): nothing of the run reaches Port, and no command
// starts, before it returns nil. A run with no take under way (try) holds its lease outright.
func (a *Agent) took(r *run) error {
	p := r.taking
	if p == nil {
		return nil
	}
	<-p.done
	if p.seen {
		return p.err
	}
	p.seen = true
	if !r.taken(p.err) {
		return p.err
	}
	return nil
}

// noteRerun opens a rerun's log, once its take succeeded, with a line saying why it runs again.
func noteRerun(r *run, runLog *reporter.RunLog) {
	if r.rerun {
		_, _ = runLog.Write([]byte("port-runner: running again: the agent that started this run stopped before it ended (onInterrupted: rerun)\n"))
	}
}

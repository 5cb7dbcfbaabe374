package consumer

import (
	"sync"
	"time"
)

// workers runs each handler on a goroutine of its own, reusing one whose handler has ended
// rather than starting another: a run's handler needs a stack of tens of KiB (decoding,
// the run file, the shim's start), which a new goroutine grows from a few KiB by copying
// it several times, a cost of every run (BENCHMARKS.md). A worker left idle for idleFor
// ends, and every one ends once stop is called; the WaitGroup waits for them all.
type workers struct {
	wg      *sync.WaitGroup
	idle    chan func() // unbuffered: a send succeeds only when a worker is waiting
	stopped chan struct{}
	idleFor time.Duration
}

// workerIdle is how long a worker waits for another handler before it ends.
const workerIdle = 5 * time.Second

func newWorkers(wg *sync.WaitGroup, idleFor time.Duration) *workers {
	return &workers{wg: wg, idle: make(chan func()), stopped: make(chan struct{}), idleFor: idleFor}
}

// run runs f on an idle worker, or on a new one. Not concurrently with stop.
func (w *workers) run(f func()) {
	select {
	case w.idle <- f:
	default:
		w.wg.Go(func() { w.loop(f) })
	}
}

func (w *workers) loop(f func()) {
	var t *time.Timer
	for {
		f()
		if t == nil {
			t = time.NewTimer(w.idleFor)
		} else {
			t.Reset(w.idleFor)
		}
		select {
		case f = <-w.idle:
		case <-t.C:
			return
		case <-w.stopped:
			t.Stop()
			return
		}
	}
}

// stop ends the idle workers, and the others once their handler ends.
func (w *workers) stop() { close(w.stopped) }

package consumer

import (
	"sync"
	"time"
)

// workers runs handle for each item on a goroutine of its own, reusing one whose handler
// has ended rather than starting another: a run's handler needs a stack of tens of KiB
// (decoding, the run file, the shim's start), which a new goroutine grows from a few KiB by
// copying it several times, a cost of every run (BENCHMARKS.md). Items, not closures, are
// handed over, so a run costs no closure either. A worker left idle for idleFor ends, and
// every one ends once stop is called; the WaitGroup waits for them all.
type workers[T any] struct {
	wg      *sync.WaitGroup
	handle  func(T)
	idle    chan T // unbuffered: a send succeeds only when a worker is waiting
	stopped chan struct{}
	idleFor time.Duration
}

// workerIdle is how long a worker waits for another handler before it ends.
const workerIdle = 5 * time.Second

func newWorkers[T any](wg *sync.WaitGroup, idleFor time.Duration, handle func(T)) *workers[T] {
	return &workers[T]{wg: wg, handle: handle, idle: make(chan T), stopped: make(chan struct{}), idleFor: idleFor}
}

// run handles item on an idle worker, or on a new one. Not concurrently with stop.
func (w *workers[T]) run(item T) {
	select {
	case w.idle <- item:
	default:
		w.wg.Go(func() { w.loop(item) })
	}
}

func (w *workers[T]) loop(item T) {
	var t *time.Timer
	for {
		w.handle(item)
		if t == nil {
			t = time.NewTimer(w.idleFor)
		} else {
			t.Reset(w.idleFor)
		}
		select {
		case item = <-w.idle:
		case <-t.C:
			return
		case <-w.stopped:
			t.Stop()
			return
		}
	}
}

// stop ends the idle workers, and the others once their handler ends.
func (w *workers[T]) stop() { close(w.stopped) }

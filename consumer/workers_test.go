package consumer

import (
	"bytes"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// goroutineID is the running goroutine's number, from its stack trace's header.
func goroutineID() int {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	buf = bytes.TrimPrefix(buf, []byte("goroutine "))
	id, _ := strconv.Atoi(string(buf[:bytes.IndexByte(buf, ' ')]))
	return id
}

// Handlers arriving one after another run on the same goroutine; every handler runs once;
// once stopped, no worker is left behind for the WaitGroup.
func TestWorkersReuseAnIdleGoroutine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var wg sync.WaitGroup
		w := newWorkers(&wg, time.Minute, call)
		ran := make(chan int)
		ids := map[int]int{}
		for range 10 {
			w.run(func() { ran <- goroutineID() })
			ids[<-ran]++
			synctest.Wait() // the worker is idle again
		}
		if len(ids) != 1 {
			t.Fatalf("10 handlers one after another ran on %d goroutines, want 1: %v", len(ids), ids)
		}
		w.stop()
		wg.Wait()
	})
}

// Handlers at once each get a goroutine; idle workers end after the idle time (the
// WaitGroup is done without stop).
func TestWorkersRunAtOnceAndEndWhenIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var wg sync.WaitGroup
		w := newWorkers(&wg, 5*time.Second, call)
		release := make(chan struct{})
		ran := make(chan int, 8)
		for range 8 {
			w.run(func() { <-release; ran <- goroutineID() })
		}
		synctest.Wait()
		close(release)
		ids := map[int]bool{}
		for range 8 {
			ids[<-ran] = true
		}
		if len(ids) != 8 {
			t.Fatalf("8 handlers at once ran on %d goroutines, want 8", len(ids))
		}
		time.Sleep(5 * time.Second) // the bubble's clock: the idle time passes
		wg.Wait()                   // a worker still idle would deadlock the bubble
		w.stop()
	})
}

// call is the handler of workers of closures.
func call(f func()) { f() }

// deepHandler needs a stack about as deep as a run's handler (tens of KiB).
//
//go:noinline
func deepHandler(depth int) byte {
	var pad [512]byte
	pad[depth%512] = byte(depth)
	if depth == 0 {
		return pad[0]
	}
	return deepHandler(depth-1) + pad[depth%512]
}

// A new goroutine per handler against reused ones, for handlers of a run's stack depth.
func BenchmarkHandlerGoroutines(b *testing.B) {
	for _, c := range []struct {
		name string
		run  func(wg *sync.WaitGroup, w *workers[func()], f func())
	}{
		{"new goroutine", func(wg *sync.WaitGroup, _ *workers[func()], f func()) { wg.Go(f) }},
		{"reused worker", func(_ *sync.WaitGroup, w *workers[func()], f func()) { w.run(f) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			var wg sync.WaitGroup
			w := newWorkers(&wg, time.Minute, call)
			done := make(chan struct{}, 16)
			for b.Loop() {
				for range 16 {
					c.run(&wg, w, func() { deepHandler(64); done <- struct{}{} })
				}
				for range 16 {
					<-done
				}
			}
			w.stop()
			wg.Wait()
		})
	}
}

// Workers handed items, as the poll hands tickets: a handler costs no allocation at all.
func BenchmarkWorkersHandItems(b *testing.B) {
	b.ReportAllocs()
	var wg sync.WaitGroup
	done := make(chan struct{}, 16)
	w := newWorkers(&wg, time.Minute, func(depth int) { deepHandler(depth); done <- struct{}{} })
	for b.Loop() {
		for range 16 {
			w.run(64)
		}
		for range 16 {
			<-done
		}
	}
	w.stop()
	wg.Wait()
}

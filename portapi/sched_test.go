package portapi

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

func waitAsync(s *scheduler, ctx context.Context, high bool) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- s.wait(ctx, high) }()
	return ch
}

func expectErr(t *testing.T, ch <-chan error, want error) {
	t.Helper()
	select {
	case err := <-ch:
		if !errors.Is(err, want) {
			t.Fatalf("wait = %v, want %v", err, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("wait did not return")
	}
}

func (s *scheduler) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.busy && len(s.high) == 0 && len(s.low) == 0 && s.preempt == nil
}

func TestSchedulerCancelUnblocksWaiters(t *testing.T) {
	s := newScheduler(0.5) // a token every 2s, burst 1
	if err := s.wait(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	ctxA, cancelA := context.WithCancel(context.Background())
	ctxB, cancelB := context.WithCancel(context.Background())
	ctxH, cancelH := context.WithCancel(context.Background())
	a := waitAsync(s, ctxA, false) // holds the turn, waiting for the limiter
	eventually(t, "a holds the turn", func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.busy })
	b := waitAsync(s, ctxB, false)
	eventually(t, "b queued", func() bool { _, l := s.queued(); return l == 1 })
	h := waitAsync(s, ctxH, true) // preempts a
	eventually(t, "a yielded to h", func() bool { hi, l := s.queued(); return hi == 0 && l == 2 })

	cancelB()
	expectErr(t, b, context.Canceled)
	cancelA()
	expectErr(t, a, context.Canceled)
	cancelH()
	expectErr(t, h, context.Canceled)
	if !s.idle() {
		t.Fatal("scheduler not idle after every waiter left")
	}
}

func TestSchedulerCancelledBeforeWaiting(t *testing.T) {
	s := newScheduler(1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.wait(ctx, true); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait = %v", err)
	}
	if !s.idle() {
		t.Fatal("not idle")
	}
}

// Many waiters of both priorities, some cancelled at random: every wait
// returns and the scheduler ends idle (run with -race).
func TestSchedulerStress(t *testing.T) {
	s := newScheduler(2000)
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rand.IntN(20))*time.Millisecond)
			defer cancel()
			err := s.wait(ctx, i%3 == 0)
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if !s.idle() {
		t.Fatal("scheduler not idle")
	}
}

func TestSchedulerUnlimited(t *testing.T) {
	s := newScheduler(0)
	for i := 0; i < 1000; i++ {
		if err := s.wait(context.Background(), i%2 == 0); err != nil {
			t.Fatal(err)
		}
	}
}

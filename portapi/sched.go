package portapi

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// scheduler hands out the tokens of one rate.Limiter in priority order.
//
// A plain limiter.Wait serves callers in whatever order their reservations
// were made, so a burst of log batches would push a run's closing request
// back by many seconds. Here only one request at a time (the "turn holder")
// holds a reservation on the limiter; the others queue, closing ("high")
// requests ahead of log ("low") requests. When a high request arrives while a
// low one holds the turn, the low one cancels its reservation (giving the
// token back) and steps aside, so a waiting closing request is never
// overtaken by a log request.
type scheduler struct {
	lim *rate.Limiter

	mu      sync.Mutex
	busy    bool          // a request holds the turn
	preempt chan struct{} // the low-priority holder's yield signal; nil otherwise
	high    []*waiter
	low     []*waiter
}

type waiter struct {
	turn chan struct{} // capacity 1: receives the turn
	pre  chan struct{} // set (under mu) when a low waiter is granted the turn
}

func newScheduler(rps float64) *scheduler {
	limit, burst := rate.Inf, 1
	if rps > 0 {
		limit = rate.Limit(rps)
		burst = max(1, int(math.Ceil(rps)))
	}
	return &scheduler{lim: rate.NewLimiter(limit, burst)}
}

// wait blocks until the caller may send one request, or ctx is done.
func (s *scheduler) wait(ctx context.Context, high bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	w := &waiter{turn: make(chan struct{}, 1)}
	s.mu.Lock()
	switch {
	case !s.busy:
		s.busy = true
		s.grantLocked(w, high)
	case high:
		s.high = append(s.high, w)
		if s.preempt != nil {
			close(s.preempt)
			s.preempt = nil
		}
	default:
		s.low = append(s.low, w)
	}
	s.mu.Unlock()

	for {
		if err := s.awaitTurn(ctx, w); err != nil {
			return err
		}
		r := s.lim.Reserve() // burst >= 1, so always OK
		d := r.Delay()
		if d <= 0 {
			s.release()
			return nil
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
			s.release()
			return nil
		case <-ctx.Done():
			t.Stop()
			r.Cancel()
			s.release()
			return ctx.Err()
		case <-w.pre: // nil (blocks forever) for high holders
			t.Stop()
			r.Cancel() // ours is the latest reservation, so the token comes back whole
			s.mu.Lock()
			s.low = slices.Insert(s.low, 0, w) // keep our place among the low ones
			s.handoffLocked()
			s.mu.Unlock()
		}
	}
}

// awaitTurn waits until w is granted the turn. On cancellation it leaves the
// queue, or, if the turn was granted meanwhile, passes it on.
func (s *scheduler) awaitTurn(ctx context.Context, w *waiter) error {
	select {
	case <-w.turn:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.Index(s.high, w); i >= 0 {
		s.high = slices.Delete(s.high, i, i+1)
		return ctx.Err()
	}
	if i := slices.Index(s.low, w); i >= 0 {
		s.low = slices.Delete(s.low, i, i+1)
		return ctx.Err()
	}
	<-w.turn // granted under mu, so it is already buffered
	s.preempt = nil
	s.handoffLocked()
	return ctx.Err()
}

func (s *scheduler) release() {
	s.mu.Lock()
	s.preempt = nil
	s.handoffLocked()
	s.mu.Unlock()
}

func (s *scheduler) handoffLocked() {
	switch {
	case len(s.high) > 0:
		w := s.high[0]
		s.high = slices.Delete(s.high, 0, 1)
		s.grantLocked(w, true)
	case len(s.low) > 0:
		w := s.low[0]
		s.low = slices.Delete(s.low, 0, 1)
		s.grantLocked(w, false)
	default:
		s.busy = false
	}
}

func (s *scheduler) grantLocked(w *waiter, high bool) {
	w.pre = nil
	if !high {
		w.pre = make(chan struct{})
		s.preempt = w.pre
	}
	w.turn <- struct{}{}
}

// queued reports how many requests wait behind the turn holder (for tests).
func (s *scheduler) queued() (high, low int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.high), len(s.low)
}

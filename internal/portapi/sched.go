package portapi

import (
	"context"
	"errors"
	"math"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Priority orders the requests waiting for Port's budget: a higher class always goes first.
type Priority int

const (
	// PriorityCheck: asking Port whether long runs are still open (runStatusInterval): the
	// least urgent of all, it only ever stops a command a little sooner.
	PriorityCheck Priority = iota
	// PriorityWatch: looking up, again and again, runs another replica holds under a lease
	// (README "Delivery"): nothing waits on them but a partition's commit.
	PriorityWatch
	// PriorityProxy: requests a run's command makes through the agent (portproxy).
	PriorityProxy
	// PriorityClaim: asking Port for pending runs and listing the runs in progress for
	// ended leases (transport: polling): above the commands' own requests, below the log
	// batches and closings of runs already running; it only ever delays the start of a run
	// nobody holds yet.
	PriorityClaim
	// PriorityLog: log batches, PATCHes of a run, lookups of runs.
	PriorityLog
	// PriorityClose: closing requests (and the token, which every request needs).
	PriorityClose
	numPriorities
)

func (p Priority) String() string {
	switch p {
	case PriorityCheck:
		return "check"
	case PriorityWatch:
		return "watch"
	case PriorityProxy:
		return "proxy"
	case PriorityClaim:
		return "claim"
	case PriorityLog:
		return "log"
	default:
		return "close"
	}
}

// scheduler is the one gate of a replica's requests to Port. It paces them by what Port
// says of the organization's budget on every answer (x-ratelimit-limit, -remaining,
// -reset, -period), under the requestsPerSecond ceiling, and hands out turns by priority,
// round-robin between runs inside a priority, with a bound on requests in flight.
//
// Pacing: the requests left in the window, less a reserve and less this replica's own
// requests in flight, are spread evenly over the time from this replica's last request to
// the reset. Replicas sharing the budget do not talk: each sees the same remaining and
// reset, so each takes the same rate, and as the others spend, every replica's share
// shrinks: together they spend the window without running past it. A 429 or a Retry-After
// holds every request of the replica until the time Port gave.
//
// Only the head of the queue waits on a timer; the others sleep until the head changes.
type scheduler struct {
	ceiling     *rate.Limiter // requestsPerSecond; nil: none
	maxInFlight int
	now         func() time.Time
	onBudget    func(remaining int)

	mu       sync.Mutex
	queues   [numPriorities]queue
	inFlight int
	budget   budget
	blocked  time.Time // no request starts before this (a 429 or Retry-After)
	last     time.Time // when the last request started
}

const defaultMaxInFlight = 16

func newScheduler(rps float64, maxInFlight int, now func() time.Time) *scheduler {
	s := &scheduler{maxInFlight: maxInFlight, now: now, onBudget: func(int) {}}
	if rps > 0 {
		s.ceiling = rate.NewLimiter(rate.Limit(rps), max(1, int(math.Ceil(rps))))
	}
	if s.maxInFlight <= 0 {
		s.maxInFlight = defaultMaxInFlight
	}
	if s.now == nil {
		s.now = time.Now
	}
	for i := range s.queues {
		s.queues[i].byKey = map[string][]*waiter{}
	}
	return s
}

// errAbandoned: the caller gave up waiting for its turn (see request.abandon).
var errAbandoned = errors.New("portapi: request abandoned before its turn")

// wait blocks until a request of priority p for key (a run id; "" for none) may start, ctx
// ends, or abandon (nil: never) is closed. On success the caller must call done once with
// the request's outcome.
func (s *scheduler) wait(ctx context.Context, abandon <-chan struct{}, p Priority, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p = min(max(p, 0), numPriorities-1)
	s.mu.Lock()
	if s.headLocked() == nil {
		if _, started := s.tryStartLocked(s.now(), p); started {
			// Nobody waits and the request may go now (the common case): no waiter to queue.
			s.mu.Unlock()
			return nil
		}
	}
	w := &waiter{key: key, prio: p, wake: make(chan struct{}, 1)}
	s.queues[p].push(w)
	s.wakeHeadLocked()
	s.mu.Unlock()

	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		var tick <-chan time.Time
		s.mu.Lock()
		if s.headLocked() == w {
			d, started := s.tryStartLocked(s.now(), p)
			if started {
				s.queues[p].popHead()
				s.wakeHeadLocked()
				s.mu.Unlock()
				return nil
			}
			if d > 0 {
				if timer == nil {
					timer = time.NewTimer(d)
				} else {
					timer.Reset(d)
				}
				tick = timer.C
			}
		}
		s.mu.Unlock()
		select {
		case <-w.wake:
		case <-tick:
		case <-ctx.Done():
			s.leave(w)
			return ctx.Err()
		case <-abandon:
			s.leave(w)
			return errAbandoned
		}
	}
}

// tryStartLocked starts a request of priority p at now if it may start (nothing to wait
// for, room in flight) and says whether it did; if not, wait is how long it must still wait
// (0: for room in flight). The caller takes it off its queue, if queued.
func (s *scheduler) tryStartLocked(now time.Time, p Priority) (wait time.Duration, started bool) {
	if wait = s.delayLocked(now, p); wait > 0 || s.inFlight >= s.inFlightLimit(p) {
		return max(wait, 0), false
	}
	s.inFlight++
	s.last = now
	if s.ceiling != nil {
		s.ceiling.ReserveN(now, 1)
	}
	return 0, true
}

func (s *scheduler) leave(w *waiter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queues[w.prio].remove(w)
	s.wakeHeadLocked()
}

// done ends a request wait let start: hdr and code are its answer (nil, 0: none came).
func (s *scheduler) done(hdr http.Header, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inFlight--
	if hdr != nil {
		s.observeLocked(hdr, code, s.now())
	}
	s.wakeHeadLocked()
}

// inFlightLimit keeps room in flight for the classes above p, so slow answers to a
// command's own requests cannot hold up the closings.
func (s *scheduler) inFlightLimit(p Priority) int {
	switch p {
	case PriorityCheck, PriorityWatch:
		return max(1, s.maxInFlight/4)
	case PriorityProxy, PriorityClaim:
		return max(1, s.maxInFlight/2)
	case PriorityLog:
		return max(1, s.maxInFlight*3/4)
	default:
		return s.maxInFlight
	}
}

// delayLocked is how long a request of priority p must wait from now before it may start.
func (s *scheduler) delayLocked(now time.Time, p Priority) time.Duration {
	d := s.blocked.Sub(now)
	if s.ceiling != nil {
		if tokens := s.ceiling.TokensAt(now); tokens < 1 {
			d = max(d, time.Duration((1-tokens)/float64(s.ceiling.Limit())*float64(time.Second))+time.Microsecond)
		}
	}
	return max(d, s.budgetDelayLocked(now, p))
}

// headLocked is the waiter to go next: the highest priority's current key's oldest.
func (s *scheduler) headLocked() *waiter {
	for p := numPriorities - 1; p >= 0; p-- {
		if w := s.queues[p].head(); w != nil {
			return w
		}
	}
	return nil
}

func (s *scheduler) wakeHeadLocked() {
	if w := s.headLocked(); w != nil {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// queued reports how many requests of each priority wait (for tests).
func (s *scheduler) queued() (n [numPriorities]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for p := range s.queues {
		for _, ws := range s.queues[p].byKey {
			n[p] += len(ws)
		}
	}
	return n
}

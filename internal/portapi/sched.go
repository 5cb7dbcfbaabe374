package portapi

import (
	"context"
	"errors"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Priority orders the requests waiting for Port's budget: a higher class always goes first.
type Priority int

const (
	// PriorityProxy: requests a run's command makes through the agent (portproxy).
	PriorityProxy Priority = iota
	// PriorityLog: log batches, PATCHes of a run, lookups of runs.
	PriorityLog
	// PriorityClose: closing requests (and the token, which every request needs).
	PriorityClose
	numPriorities
)

func (p Priority) String() string {
	switch p {
	case PriorityProxy:
		return "proxy"
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

// budget is what the latest answers said of the organization's window.
type budget struct {
	known     bool
	limit     int
	remaining int           // the lowest seen for the window ending at reset
	seenAt    time.Time     // when remaining was seen
	reset     time.Time     // end of the window
	period    time.Duration // length of a window; 0 if Port did not say

	// What others spend: the window's first answer here, and this replica's answers
	// since, tell how fast the rest of the organization spends, so a remaining seen a
	// while ago is aged by what the others have spent since.
	first   int
	firstAt time.Time
	mine    int
}

// estimate is what is probably left of the window at now: the lowest remaining seen, less
// what the rest of the organization spent since at the rate it spent so far.
func (b *budget) estimate(now time.Time) float64 {
	est := float64(b.remaining)
	// Over a short span the rate is noise (a few answers arriving together): measure it
	// over a tenth of the window at least.
	if d := max(b.seenAt.Sub(b.firstAt), b.period/10); d > 0 && now.After(b.seenAt) {
		others := float64(b.first-b.remaining-b.mine) / d.Seconds()
		est -= max(0, others) * now.Sub(b.seenAt).Seconds()
	}
	return est
}

type waiter struct {
	key  string
	prio Priority
	wake chan struct{} // capacity 1: the head may have changed, or a request ended
}

// queue is one priority's waiters: FIFO per key (a run), keys served in turn.
type queue struct {
	keys  []string
	byKey map[string][]*waiter
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
	w := &waiter{key: key, prio: p, wake: make(chan struct{}, 1)}
	s.mu.Lock()
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
			now := s.now()
			d := s.delayLocked(now, p)
			if d <= 0 && s.inFlight < s.inFlightLimit(p) {
				s.queues[p].popHead()
				s.inFlight++
				s.last = now
				if s.ceiling != nil {
					s.ceiling.ReserveN(now, 1)
				}
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
	case PriorityProxy:
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

// budgetDelayLocked spreads what is left of the window over the time to its reset.
func (s *scheduler) budgetDelayLocked(now time.Time, p Priority) time.Duration {
	b := s.budget
	if !b.known {
		return 0
	}
	remaining, reset := b.estimate(now), b.reset
	if !now.Before(reset) {
		if b.period <= 0 {
			return 0 // a new window of unknown length: the next answer tells
		}
		// A new window began: assume it whole until an answer says what others spent.
		reset = reset.Add((now.Sub(reset)/b.period + 1) * b.period)
		remaining = float64(b.limit)
	}
	avail := int(math.Floor(remaining)) - s.inFlight - reserve(b.limit, p)
	if avail <= 0 {
		return reset.Sub(now) + time.Millisecond // into the next window
	}
	from := s.last
	if b.period > 0 {
		from = later(from, reset.Add(-b.period))
	}
	next := from.Add(reset.Sub(from) / time.Duration(avail+1))
	return next.Sub(now)
}

// reserve is the part of a window a request of priority p leaves untouched. Replicas learn
// what the others spent only from their own answers, so near the end of a window each
// may count a few requests that are already gone: the reserve absorbs that, and closings
// may go deeper into it than log batches, and those deeper than a command's requests.
func reserve(limit int, p Priority) int {
	r := min(100, (limit+9)/10)
	switch p {
	case PriorityProxy:
		return 2 * r
	case PriorityLog:
		return r
	default:
		return r / 2
	}
}

// observeLocked learns the budget from one answer's headers.
func (s *scheduler) observeLocked(h http.Header, code int, now time.Time) {
	limit, okL := headerInt(h, "X-Ratelimit-Limit")
	remaining, okR := headerInt(h, "X-Ratelimit-Remaining")
	reset, okT := resetTime(h, now)
	if okL && okR && okT && limit > 0 {
		b := &s.budget
		switch {
		case !b.known || reset.After(b.reset):
			*b = budget{known: true, limit: limit, remaining: remaining, seenAt: now, reset: reset,
				first: remaining, firstAt: now}
		case reset.Equal(b.reset):
			b.mine++
			b.limit = limit
			if remaining <= b.remaining {
				b.remaining, b.seenAt = remaining, now
			}
		default:
			// A late answer about a window that is over.
		}
		if secs, ok := headerInt(h, "X-Ratelimit-Period"); ok && secs > 0 && reset.Equal(b.reset) {
			b.period = min(time.Duration(secs)*time.Second, maxHold)
		}
		if code == http.StatusTooManyRequests && reset.Equal(b.reset) {
			b.remaining = 0
		}
		s.onBudget(b.remaining)
	}
	if code == http.StatusTooManyRequests || code >= 500 {
		if hint := min(retryHint(h, code, now), maxHold); hint > 0 {
			s.blocked = later(s.blocked, now.Add(hint))
		}
	}
}

func headerInt(h http.Header, name string) (int, bool) {
	v, err := strconv.ParseFloat(strings.TrimSpace(h.Get(name)), 64)
	if err != nil || v < 0 || v > math.MaxInt32 {
		return 0, false
	}
	return int(v), true
}

// resetTime reads x-ratelimit-reset: UTC epoch seconds, as Port sends it; a small number
// is taken as seconds from now, as some APIs send.
func resetTime(h http.Header, now time.Time) (time.Time, bool) {
	v, err := strconv.ParseFloat(strings.TrimSpace(h.Get("X-Ratelimit-Reset")), 64)
	if err != nil || v < 0 || v != v {
		return time.Time{}, false
	}
	t := now.Add(seconds(v))
	if v > 1e9 {
		t = time.Unix(int64(min(v, 1e12)), 0)
	}
	return earlier(t, now.Add(maxHold)), true
}

// maxHold bounds how long one answer can hold the replica (a reset or Retry-After far
// ahead is nonsense for a window of minutes): past it, a few 429s cost less than a replica
// that stopped.
const maxHold = time.Hour

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
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

func (q *queue) push(w *waiter) {
	if len(q.byKey[w.key]) == 0 {
		q.keys = append(q.keys, w.key)
	}
	q.byKey[w.key] = append(q.byKey[w.key], w)
}

func (q *queue) head() *waiter {
	if len(q.keys) == 0 {
		return nil
	}
	return q.byKey[q.keys[0]][0]
}

// popHead removes the head; its key goes to the back of the turn if it has more waiting.
func (q *queue) popHead() {
	k := q.keys[0]
	q.keys = slices.Delete(q.keys, 0, 1)
	if ws := q.byKey[k][1:]; len(ws) > 0 {
		q.byKey[k] = ws
		q.keys = append(q.keys, k)
	} else {
		delete(q.byKey, k)
	}
}

func (q *queue) remove(w *waiter) {
	ws := q.byKey[w.key]
	i := slices.Index(ws, w)
	if i < 0 {
		return
	}
	ws = slices.Delete(ws, i, i+1)
	if len(ws) > 0 {
		q.byKey[w.key] = ws
		return
	}
	delete(q.byKey, w.key)
	if k := slices.Index(q.keys, w.key); k >= 0 {
		q.keys = slices.Delete(q.keys, k, k+1)
	}
}

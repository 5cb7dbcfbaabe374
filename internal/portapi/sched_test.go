package portapi

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func waitAsync(s *scheduler, ctx context.Context, p Priority, key string) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- s.wait(ctx, nil, p, key) }()
	return ch
}

func expectErr(t *testing.T, ch <-chan error, want error) {
	t.Helper()
	select {
	case err := <-ch:
		if !errors.Is(err, want) {
			t.Fatalf("wait = %v, want %v", err, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("wait did not return")
	}
}

func (s *scheduler) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.headLocked() == nil && s.inFlight == 0
}

// blockFor holds every request of s for a long time, as a 429 would.
func blockFor(s *scheduler, d time.Duration) {
	s.mu.Lock()
	s.blocked = time.Now().Add(d)
	s.mu.Unlock()
}

func TestSchedulerCancelUnblocksWaiters(t *testing.T) {
	s := newScheduler(0, 0, nil)
	blockFor(s, time.Hour)
	ctxA, cancelA := context.WithCancel(context.Background())
	ctxB, cancelB := context.WithCancel(context.Background())
	ctxH, cancelH := context.WithCancel(context.Background())
	a := waitAsync(s, ctxA, PriorityLog, "r_a")
	b := waitAsync(s, ctxB, PriorityProxy, "r_b")
	h := waitAsync(s, ctxH, PriorityClose, "r_h")
	eventually(t, "all three queued", func() bool { q := s.queued(); return q == [numPriorities]int{0, 0, 1, 1, 1} })
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
	s := newScheduler(1, 0, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.wait(ctx, nil, PriorityClose, ""); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait = %v", err)
	}
	if !s.idle() {
		t.Fatal("not idle")
	}
}

// Many waiters of every priority, some cancelled at random: every wait returns and the
// scheduler ends idle (run with -race).
func TestSchedulerStress(t *testing.T) {
	s := newScheduler(2000, 4, nil)
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rand.IntN(20))*time.Millisecond)
			defer cancel()
			err := s.wait(ctx, nil, Priority(i%3), fmt.Sprint("r_", i%7))
			if err == nil {
				s.done(nil, 0)
			} else if !errors.Is(err, context.DeadlineExceeded) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if !s.idle() {
		t.Fatal("scheduler not idle")
	}
}

func TestSchedulerUnlimited(t *testing.T) {
	s := newScheduler(0, 0, nil)
	for i := 0; i < 1000; i++ {
		if err := s.wait(context.Background(), nil, Priority(i%3), ""); err != nil {
			t.Fatal(err)
		}
		s.done(nil, 0)
	}
}

// grantOrder queues the given waiters while the scheduler is held, releases it, and returns
// the order in which they were let through, one at a time.
func grantOrder(t *testing.T, s *scheduler, ws []struct {
	p   Priority
	key string
}) []string {
	t.Helper()
	blockFor(s, time.Hour)
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	for i, w := range ws {
		want := i + 1
		wg.Go(func() {
			if err := s.wait(context.Background(), nil, w.p, w.key); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, fmt.Sprintf("%s/%s", w.p, w.key))
			mu.Unlock()
			s.done(nil, 0)
		})
		// Queued in this order, so FIFO within a run is observable.
		eventually(t, "queued", func() bool {
			n := 0
			for _, q := range s.queued() {
				n += q
			}
			return n == want
		})
	}
	s.mu.Lock()
	s.maxInFlight = 1 // one at a time, so the order of grants is the order of requests
	s.blocked = time.Time{}
	s.wakeHeadLocked()
	s.mu.Unlock()
	wg.Wait()
	return order
}

// Closings go before log batches and PATCHes, those before a command's own requests; inside
// a class runs take turns, so a chatty run cannot starve the others.
func TestSchedulerPriorityAndTurns(t *testing.T) {
	s := newScheduler(0, 0, nil)
	type w = struct {
		p   Priority
		key string
	}
	got := grantOrder(t, s, []w{
		{PriorityWatch, "r_leased"},
		{PriorityProxy, "r_a"},
		{PriorityLog, "r_chatty"}, {PriorityLog, "r_chatty"}, {PriorityLog, "r_chatty"},
		{PriorityLog, "r_quiet"},
		{PriorityClose, "r_b"},
		{PriorityLog, "r_other"},
		{PriorityClose, "r_c"},
	})
	want := []string{"close/r_b", "close/r_c", "log/r_chatty", "log/r_quiet", "log/r_other", "log/r_chatty", "log/r_chatty", "proxy/r_a", "watch/r_leased"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("grants %v\nwant   %v", got, want)
	}
}

// In flight is bounded, and a command's requests cannot take the room closings need.
func TestSchedulerInFlightBound(t *testing.T) {
	s := newScheduler(0, 4, nil)
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if err := s.wait(ctx, nil, PriorityProxy, "r_x"); err != nil {
			t.Fatal(err)
		}
	}
	third := waitAsync(s, ctx, PriorityProxy, "r_x") // 2 of 4 is the proxy's share
	if err := s.wait(ctx, nil, PriorityLog, "r_y"); err != nil {
		t.Fatal(err)
	}
	log := waitAsync(s, ctx, PriorityLog, "r_y") // 3 of 4 is the log's share
	if err := s.wait(ctx, nil, PriorityClose, "r_z"); err != nil {
		t.Fatalf("closing with room for it: %v", err)
	}
	select {
	case err := <-third:
		t.Fatalf("a third proxied request started: %v", err)
	case err := <-log:
		t.Fatalf("a second log request started: %v", err)
	default:
	}
	s.done(nil, 0) // the closing's answer: 3 in flight, still no room for either
	s.done(nil, 0) // 2: the log request goes, the proxied one not yet
	expectErr(t, log, nil)
	select {
	case err := <-third:
		t.Fatalf("a third proxied request started with 3 in flight: %v", err)
	default:
	}
	s.done(nil, 0)
	s.done(nil, 0)
	expectErr(t, third, nil)
}

func rateHeaders(limit, remaining int, reset time.Time, period int) http.Header {
	h := http.Header{}
	h.Set("x-ratelimit-limit", strconv.Itoa(limit))
	h.Set("x-ratelimit-remaining", strconv.Itoa(remaining))
	h.Set("x-ratelimit-reset", strconv.FormatInt(reset.Unix(), 10))
	if period > 0 {
		h.Set("x-ratelimit-period", strconv.Itoa(period))
	}
	return h
}

// The pacing itself, at fixed times: what is left of the window, less the reserve and the
// requests in flight, is spread evenly up to the reset.
func TestSchedulerPacesByPortsHeaders(t *testing.T) {
	now := time.Unix(1_800_000_000, 0) // a window of 10s from now
	s := newScheduler(0, 0, func() time.Time { return now })
	var seen []int
	s.onBudget = func(r int) { seen = append(seen, r) }
	reset := now.Add(10 * time.Second)
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.delayLocked(now, PriorityLog); d != 0 {
		t.Fatalf("before any answer: delay %v, want none", d)
	}
	s.observeLocked(rateHeaders(100, 59, reset, 10), 200, now)
	s.last = now
	// 59 left, a reserve of 10 for logs: 49 spread over 10s -> one every 10s/50.
	if d, want := s.delayLocked(now, PriorityLog), 10*time.Second/50; d != want {
		t.Fatalf("delay %v, want %v", d, want)
	}
	// Closings keep a smaller reserve (5): 54 over 10s.
	if d, want := s.delayLocked(now, PriorityClose), 10*time.Second/55; d != want {
		t.Fatalf("closing delay %v, want %v", d, want)
	}
	// Another replica spent: a later answer in the same window lowers what is left; an
	// older number never raises it again.
	s.observeLocked(rateHeaders(100, 19, reset, 10), 200, now)
	s.observeLocked(rateHeaders(100, 40, reset, 10), 200, now)
	s.inFlight = 4
	if d, want := s.delayLocked(now, PriorityLog), 10*time.Second/6; d != want {
		t.Fatalf("delay %v, want %v (19 - 4 in flight - 10 reserve = 5 left)", d, want)
	}
	// Nothing left above the reserve: wait for the next window.
	s.observeLocked(rateHeaders(100, 12, reset, 10), 200, now)
	if d := s.delayLocked(now, PriorityLog); d <= 10*time.Second {
		t.Fatalf("delay %v, want past the reset", d)
	}
	// Past the reset, the new window is assumed whole until an answer says otherwise.
	later := reset.Add(time.Second)
	s.inFlight = 0
	if d, want := s.delayLocked(later, PriorityLog), reset.Add(10*time.Second/91).Sub(later); d != want && d > 0 {
		t.Fatalf("in the next window: delay %v, want %v or none", d, want)
	}
	if fmt.Sprint(seen) != "[59 19 19 12]" {
		t.Fatalf("budget remaining reported %v", seen)
	}
}

// A 429 holds every request of the replica, not only the one that got it.
func TestScheduler429HoldsTheReplica(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := newScheduler(0, 0, func() time.Time { return now })
	h := rateHeaders(100, 0, now.Add(30*time.Second), 300)
	h.Set("Retry-After", "7")
	s.inFlight = 1 // the request that got the 429
	s.done(h, http.StatusTooManyRequests)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range []Priority{PriorityProxy, PriorityLog, PriorityClose} {
		if d := s.delayLocked(now, p); d < 7*time.Second {
			t.Errorf("%s after a 429: delay %v, want at least Retry-After (7s)", p, d)
		}
	}
	if d := s.delayLocked(now, PriorityClose); d < 30*time.Second {
		t.Errorf("after a 429 nothing is left of the window: delay %v, want the reset (30s)", d)
	}
}

// A closing that waits more than 10s for Port (here a 429's Retry-After of 11s) is logged
// once, with its run.
func TestClosingWaitIsLogged(t *testing.T) {
	f := newFakePort(t)
	f.api = statusSequence(status(429, "Retry-After", "11"), status(429, "Retry-After", "1"))
	core, logs := observer.New(zapcore.InfoLevel)
	c, _ := newTestClient(t, f, func(o *Options) { o.Logger = zap.New(core) })
	recordSleeps(c)
	if _, err := c.CloseRun(context.Background(), "r_slow", Closing{Message: "bye", TerminationStatus: StatusSuccess}); err != nil {
		t.Fatal(err)
	}
	lines := logs.FilterMessage("a run's closing request waited for Port").All()
	if len(lines) != 1 || lines[0].ContextMap()["run_id"] != "r_slow" {
		t.Fatalf("%d warnings (%v), want one for r_slow", len(lines), lines)
	}
	if err := c.AppendLog(context.Background(), "r_fast", "x"); err != nil {
		t.Fatal(err)
	}
	if n := len(logs.FilterMessage("a run's closing request waited for Port").All()); n != 1 {
		t.Fatalf("%d warnings after a log request", n)
	}
}

// FuzzBudgetHeaders: whatever Port's rate-limit headers say, reading them never panics and
// never leaves the pacing with a negative budget or a wait longer than maxHold.
func FuzzBudgetHeaders(f *testing.F) {
	f.Add("100", "59", "1800000010", "10", "", 200)
	f.Add("15000", "0", "1800000300", "300", "7", 429)
	f.Add("1", "-3", "5", "", "Wed, 21 Oct 2015 07:28:00 GMT", 503)
	f.Add("NaN", "1e309", "-1", "0", "NaN", 429)
	f.Add("2147483648", "2147483647", "99999999999999999999", "1e12", "1e12", 429)
	f.Fuzz(func(t *testing.T, limit, remaining, reset, period, retryAfter string, code int) {
		now := time.Unix(1_800_000_000, 0)
		s := newScheduler(50, 0, func() time.Time { return now })
		h := http.Header{}
		for k, v := range map[string]string{"X-Ratelimit-Limit": limit, "X-Ratelimit-Remaining": remaining,
			"X-Ratelimit-Reset": reset, "X-Ratelimit-Period": period, "Retry-After": retryAfter} {
			h.Set(k, v)
		}
		s.inFlight = 1
		s.done(h, code)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.budget.remaining < 0 || s.budget.limit < 0 {
			t.Fatalf("budget %+v", s.budget)
		}
		for p := PriorityCheck; p < numPriorities; p++ {
			if d := s.delayLocked(now, p); d > maxHold+time.Second {
				t.Fatalf("%s waits %v after headers %v", p, d, h)
			}
		}
	})
}

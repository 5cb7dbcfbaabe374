package portapi

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

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
// may go deeper into it than log batches, those deeper than a command's requests, and
// those deeper than the status checks of long runs.
func reserve(limit int, p Priority) int {
	r := min(100, (limit+9)/10)
	switch p {
	case PriorityCheck, PriorityWatch:
		return 3 * r
	case PriorityProxy:
		return 2 * r
	case PriorityClaim:
		return r + r/2
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
	v, ok := headerNumber(h, name)
	if !ok || v < 0 || v > math.MaxInt32 {
		return 0, false
	}
	return int(v), true
}

// headerNumber is the number in h's header name; false when it is not sent (read without
// a parse error to allocate, as every answer without it would) or not a number.
func headerNumber(h http.Header, name string) (float64, bool) {
	s := strings.TrimSpace(h.Get(name))
	if s == "" {
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}

// resetTime reads x-ratelimit-reset: UTC epoch seconds, as Port sends it; a small number
// is taken as seconds from now, as some APIs send.
func resetTime(h http.Header, now time.Time) (time.Time, bool) {
	v, ok := headerNumber(h, "X-Ratelimit-Reset")
	if !ok || v < 0 || v != v {
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

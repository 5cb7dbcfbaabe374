// Package backoff is the one retry wait of the project: full jitter over an exponential
// ceiling, never shorter than what the server asked for, and a sleep that ends with its
// context.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy shapes the waits between attempts. The zero value waits 250ms doubling up to 30s.
type Policy struct {
	Base, Max time.Duration
}

// Delay is the wait before retry n (0 for the first retry): uniform in [0, min(Base*2^n,
// Max)] (full jitter, so many clients failing together do not retry together), but at
// least hint, the wait the server asked for.
func (p Policy) Delay(n int, hint time.Duration) time.Duration {
	base, ceil := p.bounds()
	c := base
	for i := 0; i < n && c < ceil; i++ {
		c *= 2
	}
	c = min(c, ceil)
	return max(time.Duration(rand.Int64N(int64(c)+1)), hint)
}

func (p Policy) bounds() (base, ceil time.Duration) {
	base, ceil = p.Base, p.Max
	if base <= 0 {
		base = 250 * time.Millisecond
	}
	if ceil <= 0 {
		ceil = 30 * time.Second
	}
	return base, max(ceil, base)
}

// Sleep waits d or until ctx ends, whichever is first, and returns ctx's error if it ended.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

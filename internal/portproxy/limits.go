package portproxy

// The proxy as a bounded guest: slots, queue and budget shares (Options.Limits).

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"os"
	"time"

	"golang.org/x/time/rate"
)

// Limits bound what commands may ask of the agent through the proxy. A request holds a slot
// from before its body is read until Port answered, so memory for bodies is bounded by
// MaxConcurrent * MaxBody, however many requests queue.
type Limits struct {
	// MaxConcurrentPerRun bounds one run's requests being handled at once; default 4.
	MaxConcurrentPerRun int
	// MaxQueuedPerRun bounds one run's requests waiting for a slot; past it the answer is
	// 429 at once; default 64.
	MaxQueuedPerRun int
	// MaxConcurrent bounds the requests of all runs being handled at once; default 16.
	MaxConcurrent int
	// RunRequestsPerSecond is one run's share of the replica's Port budget, and
	// RequestsPerSecond that of all runs together; 0 means no limit of the proxy's own
	// (the Port client's limiter still applies).
	RunRequestsPerSecond, RequestsPerSecond float64
	// BodyTimeout bounds reading a request's body, which holds its slots; default 30s.
	BodyTimeout time.Duration
}

func (l *Limits) defaults() {
	if l.MaxConcurrentPerRun <= 0 {
		l.MaxConcurrentPerRun = 4
	}
	if l.MaxQueuedPerRun <= 0 {
		l.MaxQueuedPerRun = 64
	}
	if l.MaxConcurrent <= 0 {
		l.MaxConcurrent = 16
	}
	if l.BodyTimeout <= 0 {
		l.BodyTimeout = 30 * time.Second
	}
}

// limiter is a rate.Limiter for rps, nil (no limit) for 0 or less.
func limiter(rps float64) *rate.Limiter {
	if rps <= 0 || math.IsNaN(rps) || math.IsInf(rps, 0) {
		return nil
	}
	return rate.NewLimiter(rate.Limit(rps), max(1, int(math.Ceil(rps))))
}

func waitRate(ctx context.Context, l *rate.Limiter) error {
	if l == nil {
		return nil
	}
	return l.Wait(ctx)
}

// acquire waits for one of the run's slots and then one of the proxy's; release gives both
// back. Past MaxQueuedPerRun waiting requests it refuses at once rather than pile up.
func (p *Proxy) acquire(ctx context.Context, g *grant, l *live) (release func(), e apiErr) {
	if int(g.queued.Add(1)) > p.limits.MaxQueuedPerRun {
		g.queued.Add(-1)
		return nil, errTooMany
	}
	fail := func() (func(), apiErr) { return nil, waitFailed(l) }
	select {
	case l.slots <- struct{}{}:
		g.queued.Add(-1)
	case <-ctx.Done():
		g.queued.Add(-1)
		return fail()
	}
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		<-l.slots
		return fail()
	}
	return func() { <-p.slots; <-l.slots }, apiErr{}
}

// readBody reads r's body, at most MaxBody bytes (in one allocation when the length is
// announced), within Limits.BodyTimeout and while ctx lasts (the request's timeout, its
// run's end). The body is read while the request holds its slots, and a read on the
// connection heeds no context: a body that trickles, or never comes, would hold them for as
// long as its command keeps the connection open, and the slots of all runs are few
// (Limits.MaxConcurrent).
func (p *Proxy) readBody(ctx context.Context, w http.ResponseWriter, r *http.Request, l *live) ([]byte, apiErr) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(p.limits.BodyTimeout))
	stop := context.AfterFunc(ctx, func() { _ = rc.SetReadDeadline(time.Now()) })
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + 1) // +1: ReadFrom sees EOF without growing
	}
	_, err := buf.ReadFrom(io.LimitReader(r.Body, MaxBody+1))
	stop()
	switch {
	case err != nil && l.ctx.Err() != nil:
		return nil, errRunEnded
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, apiErr{http.StatusRequestTimeout, "request_timeout", "the request body did not arrive in time"}
	case err != nil:
		return nil, apiErr{http.StatusBadRequest, "invalid_request", "reading the request body: " + err.Error()}
	case buf.Len() > MaxBody:
		return nil, errTooLarge
	case buf.Len() == 0:
		return nil, apiErr{}
	}
	return buf.Bytes(), apiErr{}
}

// InFlight reports how many requests hold one of the proxy's slots (for tests).
func (p *Proxy) InFlight() int { return len(p.slots) }

func waitFailed(l *live) apiErr {
	if l.ctx.Err() != nil {
		return errRunEnded
	}
	return errWaited
}

package executor

import (
	"context"
	"fmt"
)

// Pool bounds how many runs execute at once: a global limit, and optional per-action limits
// below it. The consumer reserves global slots before it polls, so it never fetches more
// records than the pool can start, and memory stays bounded by the pool, not by the backlog.
type Pool struct {
	global    chan struct{}
	perAction map[string]chan struct{}
}

// NewPool makes a pool of max slots; perAction limits (0 = only the global limit) are
// fixed at construction, so the pool needs no lock.
func NewPool(max int, perAction map[string]int) *Pool {
	if max < 1 {
		max = 1
	}
	p := &Pool{global: make(chan struct{}, max), perAction: map[string]chan struct{}{}}
	for action, n := range perAction {
		if n > 0 {
			p.perAction[action] = make(chan struct{}, n)
		}
	}
	return p
}

// Reserve waits until at least one global slot is free, then takes every free slot up to
// limit and says how many it took. Each is given back with Release.
func (p *Pool) Reserve(ctx context.Context, limit int) (int, error) {
	select {
	case p.global <- struct{}{}:
	case <-ctx.Done():
		return 0, context.Cause(ctx)
	}
	n := 1
	for n < limit {
		select {
		case p.global <- struct{}{}:
			n++
		default:
			return n, nil
		}
	}
	return n, nil
}

// Release gives back n reserved global slots.
func (p *Pool) Release(n int) {
	for i := 0; i < n; i++ {
		select {
		case <-p.global:
		default:
			panic(fmt.Sprintf("executor: released %d slots, more than reserved", n)) // a programming error, never input
		}
	}
}

// AcquireAction waits for a slot of the action's own limit (immediately when it has none).
// The caller already holds a global slot.
func (p *Pool) AcquireAction(ctx context.Context, action string) (release func(), err error) {
	sem, ok := p.perAction[action]
	if !ok {
		return func() {}, nil
	}
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// InUse is the number of global slots taken.
func (p *Pool) InUse() int { return len(p.global) }

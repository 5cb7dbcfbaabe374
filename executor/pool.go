package executor

import (
	"context"
	"fmt"
)

// Pool bounds how many runs execute at once: a global limit, and optional per-action limits
// below it. Two budgets keep it fair and bounded:
//
//   - admitted (2 x max): records the consumer holds, running or queued for their action.
//     The consumer reserves these before it polls, so memory is bounded by the pool, not
//     by the backlog.
//   - running (max): commands executing. A run first waits in its action's queue, and only
//     then takes a running slot, so runs of an action at its limit never hold slots that
//     another action's runs could use.
type Pool struct {
	admitted  chan struct{}
	running   chan struct{}
	perAction map[string]chan struct{}
}

// NewPool makes a pool of max running slots; perAction limits (0 = only the global limit)
// are fixed at construction, so the pool needs no lock.
func NewPool(max int, perAction map[string]int) *Pool {
	if max < 1 {
		max = 1
	}
	p := &Pool{admitted: make(chan struct{}, 2*max), running: make(chan struct{}, max), perAction: map[string]chan struct{}{}}
	for action, n := range perAction {
		if n > 0 {
			p.perAction[action] = make(chan struct{}, n)
		}
	}
	return p
}

// Reserve waits until at least one admission is free, then takes every free one up to
// limit and says how many it took. Each is given back with Release.
func (p *Pool) Reserve(ctx context.Context, limit int) (int, error) {
	select {
	case p.admitted <- struct{}{}:
	case <-ctx.Done():
		return 0, context.Cause(ctx)
	}
	n := 1
	for n < limit {
		select {
		case p.admitted <- struct{}{}:
			n++
		default:
			return n, nil
		}
	}
	return n, nil
}

// Release gives back n reserved admissions.
func (p *Pool) Release(n int) {
	for i := 0; i < n; i++ {
		select {
		case <-p.admitted:
		default:
			panic(fmt.Sprintf("executor: released %d slots, more than reserved", n)) // a programming error, never input
		}
	}
}

// Acquire waits for a slot of the action's own limit (at once when it has none), then for
// a running slot. The caller holds an admission. release gives both back.
func (p *Pool) Acquire(ctx context.Context, action string) (release func(), err error) {
	sem, limited := p.perAction[action]
	if limited {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
	select {
	case p.running <- struct{}{}:
	case <-ctx.Done():
		if limited {
			<-sem
		}
		return nil, context.Cause(ctx)
	}
	return func() {
		<-p.running
		if limited {
			<-sem
		}
	}, nil
}

// InUse is the number of commands running (running slots taken).
func (p *Pool) InUse() int { return len(p.running) }

// Admitted is the number of admissions taken (records held, running or queued).
func (p *Pool) Admitted() int { return len(p.admitted) }

package consumer

import "context"

// Acting returns a context for a request that acts on the run (its closing): done once Held
// fails, and at the latest when a lease that lasts ends, so that no such request is sent, or
// retried, once another member may act on the run. The watch sees Held fail within a sixth
// of the fence; the lease's margin covers that and a request under way.
func (t *Ticket) Acting(parent context.Context) (context.Context, context.CancelFunc) {
	cancelTimeout := context.CancelFunc(func() {})
	if lasts := t.Lasts(); lasts > 0 {
		parent, cancelTimeout = context.WithTimeoutCause(parent, lasts, ErrLeaseEnded)
	}
	ctx, cancel := context.WithCancelCause(parent)
	key := &cancel
	t.c.runsMu.Lock()
	if t.acting == nil {
		t.acting = map[*context.CancelCauseFunc]struct{}{}
	}
	t.acting[key] = struct{}{}
	t.c.runsMu.Unlock()
	if err := t.Held(); err != nil {
		cancel(err)
	}
	return ctx, func() {
		t.c.runsMu.Lock()
		delete(t.acting, key)
		t.c.runsMu.Unlock()
		cancel(context.Canceled)
		cancelTimeout()
	}
}

// endActing ends the contexts Acting gave, with err as their cause.
func (t *Ticket) endActing(err error) {
	t.c.runsMu.Lock()
	cancels := make([]context.CancelCauseFunc, 0, len(t.acting))
	for c := range t.acting {
		cancels = append(cancels, *c)
	}
	t.c.runsMu.Unlock()
	for _, cancel := range cancels {
		cancel(err)
	}
}

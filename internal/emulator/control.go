package emulator

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Run returns a snapshot of the run with that id.
func (e *Emulator) Run(id string) (RunState, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.runs[id]
	if !ok {
		return RunState{}, false
	}
	return r.clone(), true
}

// Runs returns snapshots of every run, oldest first.
func (e *Emulator) Runs() []RunState {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]RunState, 0, len(e.order))
	for _, id := range e.order {
		out = append(out, e.runs[id].clone())
	}
	return out
}

// Requests returns every request received so far, in arrival order.
func (e *Emulator) Requests() []Request {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.requests)
}

// WaitRun blocks until cond holds for the run (which need not exist yet) or
// ctx ends. It wakes on every change instead of polling, so tests stay fast
// and deterministic.
func (e *Emulator) WaitRun(ctx context.Context, id string, cond func(RunState) bool) (RunState, error) {
	for {
		e.mu.Lock()
		ch := e.changed
		r, ok := e.runs[id]
		var snap RunState
		if ok {
			snap = r.clone()
		}
		e.mu.Unlock()
		if ok && cond(snap) {
			return snap, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			if !ok {
				return snap, fmt.Errorf("emulator: run %s never appeared: %w", id, ctx.Err())
			}
			return snap, fmt.Errorf("emulator: run %s (status %s): %w", id, snap.Status, ctx.Err())
		}
	}
}

// FailNext makes the next n requests to any /v1/actions path answer code with
// a JSON error and no state change, to exercise the client's retries.
func (e *Emulator) FailNext(n int, code int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failN, e.failCode = n, code
}

// RefuseClosings answers the next closing requests (POST .../logs with a
// terminationStatus), one code each in order, with a JSON error and no state change:
// Port refusing a run's termination (401 during a token rotation, 5xx, a 422).
func (e *Emulator) RefuseClosings(codes ...int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.refuseClosings = append(e.refuseClosings, codes...)
}

// SetDown(true) makes every request answer 503 until SetDown(false): an outage.
func (e *Emulator) SetDown(down bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.down = down
}

// SetBudget changes the org's budget to limit requests per window (0: unlimited) from the
// next window on: requests already counted in this window stay counted, and what earlier
// answers said remains of it stays true, as when Port's limits change.
func (e *Emulator) SetBudget(limit int, window time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := &budgetChange{limit: limit, window: budgetWindow(window)}
	if e.budget <= 0 {
		e.budget, e.window, e.winStart, e.winCount = c.limit, c.window, time.Time{}, 0
		e.budgetSince = e.opts.Now().Truncate(e.window)
		return
	}
	e.next = c
}

// Rejected is how many requests the budget has answered 429 so far.
func (e *Emulator) Rejected() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.rejected
}

// budgetWindow rounds a window to whole seconds (x-ratelimit-reset has second precision),
// 5 minutes by default.
func budgetWindow(d time.Duration) time.Duration {
	if d <= 0 {
		return 5 * time.Minute
	}
	return max(time.Second, d.Round(time.Second))
}

// ExpireTokens invalidates every issued token, so the next use answers 401
// token_expired and the client has to re-authenticate.
func (e *Emulator) ExpireTokens() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for k, t := range e.tokens {
		t.revoked = true
		e.tokens[k] = t
	}
}

// RegisterRun makes a run known (IN_PROGRESS) without producing a message, for
// tests that put their own messages on the topic. An existing run is kept.
func (e *Emulator) RegisterRun(id, action string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.runs[id]; ok {
		return
	}
	e.insertLocked(&RunState{ID: id, Action: action, Blueprint: "microservice", Properties: map[string]any{}})
}

// RegisterNodeRun makes a workflow node run known (IN_PROGRESS, in a workflow run of its own)
// without producing a message, for tests that put their own messages on the topic. An
// existing run is kept.
func (e *Emulator) RegisterNodeRun(id, workflow string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.runs[id]; ok {
		return
	}
	e.insertNodeRunLocked(id, workflow, "")
}

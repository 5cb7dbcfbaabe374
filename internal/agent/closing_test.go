package agent

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/port-runner/port-runner/internal/runmsg"
)

// endingLease is held until end is called; then it is gone for good, and so is every
// context acting gave.
type endingLease struct {
	ownLease
	gone         atomic.Bool
	ctx          context.Context
	cancelActing context.CancelCauseFunc
}

var errLeaseGone = errors.New("the lease went to another replica")

func newEndingLease() *endingLease {
	l := &endingLease{}
	l.ctx, l.cancelActing = context.WithCancelCause(context.Background())
	return l
}

func (l *endingLease) end() { l.gone.Store(true); l.cancelActing(errLeaseGone) }

func (l *endingLease) held() holding {
	if l.gone.Load() {
		return holding{err: errLeaseGone, forGood: true}
	}
	return holding{}
}

func (l *endingLease) acting(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	stop := context.AfterFunc(l.ctx, func() { cancel(context.Cause(l.ctx)) })
	return ctx, func() { stop(); cancel(context.Canceled) }
}

// TestAClosingUnderWayEndsWithTheLease: a closing request still being sent (Port slow, its
// answers retried within the request) when the run's lease goes to another replica stops
// there, and is not tried again: the other replica may decide the run from then on.
func TestAClosingUnderWayEndsWithTheLease(t *testing.T) {
	a := &Agent{timings: timings{closingBudget: time.Hour}}
	lease := newEndingLease()
	r := &run{lease: lease, msg: runmsg.Run{ID: "r_slow"}, log: zap.NewNop(), report: context.Background(),
		life: newLives(nil).receive(runAt{}, "r_slow", "act", lease)}
	var sends atomic.Int32
	sending := make(chan struct{}, 1)
	var why error
	closed := make(chan bool, 1)
	go func() {
		closed <- a.closeRun(r, true, func(ctx context.Context) error {
			sends.Add(1)
			sending <- struct{}{}
			<-ctx.Done() // Port does not answer: the client retries until its context ends
			why = context.Cause(ctx)
			return ctx.Err()
		})
	}()
	select {
	case <-sending:
	case <-time.After(30 * time.Second):
		t.Fatal("no closing request sent")
	}
	lease.end()
	select {
	case ok := <-closed:
		if ok || !errors.Is(why, errLeaseGone) || sends.Load() != 1 {
			t.Fatalf("closeRun = %v after %d sends, the request ended by %v; want false after 1, ended by the lease", ok, sends.Load(), why)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the closing request went on after the lease had gone")
	}
}

// TestAPolledRunsClosingEndsWithItsLeaseMark: transport polling, a run's closing is bound by
// its lease mark in Port (other replicas' sweeps close the run past it): each try's context
// ends at the mark (a request under way then stops: TestAClosingUnderWayEndsWithTheLease),
// and past it the closing is neither sent nor tried again.
func TestAPolledRunsClosingEndsWithItsLeaseMark(t *testing.T) {
	lease := &claimLease{}
	if h := lease.held(); h.err != nil {
		t.Fatalf("no mark written: held %+v, want held for ever", h)
	}
	until := time.Now().Add(time.Hour)
	lease.until.Store(&until)
	ctx, done := lease.acting(context.Background())
	deadline, ok := ctx.Deadline()
	done()
	if !ok || !deadline.Equal(until) || lease.held().err != nil {
		t.Fatalf("before the mark's end: deadline %v (%v), held %+v; want the mark's end, held", deadline, ok, lease.held())
	}
	past := time.Now().Add(-time.Second)
	lease.until.Store(&past)
	ctx, done = lease.acting(context.Background())
	defer done()
	if !errors.Is(context.Cause(ctx), errMarkEnded) || !lease.held().forGood {
		t.Fatalf("past the mark's end: acting ended by %v, held %+v; want errMarkEnded, gone for good", context.Cause(ctx), lease.held())
	}
	a := &Agent{timings: timings{closingBudget: time.Hour}}
	r := &run{lease: lease, msg: runmsg.Run{ID: "r_polled"}, log: zap.NewNop(), report: context.Background(),
		life: newLives(nil).receive(runAt{}, "r_polled", "act", lease)}
	sends := 0
	if a.closeRun(r, true, func(context.Context) error { sends++; return nil }) || sends != 0 {
		t.Fatalf("past the mark's end: closeRun sent %d closing(s); want none, and the run left", sends)
	}
}

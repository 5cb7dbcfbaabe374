package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/portapi"
	"github.com/port-runner/port-runner/internal/runmsg"
	"github.com/port-runner/port-runner/polling"
)

// With transport: polling, Port never offers an acknowledged run again: if the replica that
// acknowledged it dies, nobody would close it. So before it acknowledges a run, the replica
// writes its hold on it into the run's externalRunId: a lease until the latest time its
// command could still run or be closed (the action's timeout, the kill grace and the
// closing budget, from now). Every replica lists the runs Port shows in progress now and
// then (polling.sweepInterval) and closes, as interrupted, the acknowledged ones whose lease
// ended with no replica left to close them. A run still pending (its holder died before the
// acknowledgement) is Port's to offer again, never the sweep's. README "Delivery" says what
// this assumes.

// leasePrefix starts the externalRunId of a run held under a lease.
const leasePrefix = "port-runner lease "

// leaseMark is the externalRunId of a run holder holds until until.
func leaseMark(holder string, until time.Time) string {
	return leasePrefix + holder + " until " + until.UTC().Format(time.RFC3339)
}

// leaseEnd reads a lease mark; ok is false for any other externalRunId (none, or one the
// command set, which then holds no lease).
func leaseEnd(externalRunID string) (until time.Time, ok bool) {
	rest, found := strings.CutPrefix(externalRunID, leasePrefix)
	if !found {
		return time.Time{}, false
	}
	i := strings.LastIndex(rest, " until ")
	if i < 0 {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, rest[i+len(" until "):])
	return t, err == nil
}

// holder names this replica in its leases: the pod's name in Kubernetes.
func holder() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "unknown"
	}
	return h
}

// ackMargin is kept between the last acknowledgement attempt and the claim's end, so an
// acknowledgement still in flight never lands after another replica claimed the run.
func ackMargin(visibility time.Duration) time.Duration { return min(visibility/5, 5*time.Second) }

// claimLease is a claimed run's runLease (transport: polling). Until it is taken the run is
// the claim's: hidden from the other claimers until the claim ends, so every wait before
// take ends ackMargin before that (handover), and a run not taken by then is left
// unacknowledged for Port to offer again. take writes this replica's lease mark and then
// acknowledges the run. Port offers only runs nobody acknowledged, so a claimed run has no
// earlier holder; nothing fences it (held always holds, stopped never ends, lasting is nil):
// the lease mark's end is what the other replicas' sweeps go by.
type claimLease struct {
	a      *Agent
	c      polling.Claim
	ackBy  context.Context // ends ackMargin before the claim does
	cancel context.CancelFunc
	// until is when the lease mark Port has ends, less its margin (nil: no mark), after
	// which other replicas' sweeps close the run.
	until atomic.Pointer[time.Time]
}

// errMarkEnded: the run's lease mark in Port has ended; other replicas' sweeps close it.
var errMarkEnded = errors.New("the run's lease in Port has ended")

// errClaimEnded: the run's claim ended (less the ack margin) before this replica took it.
var errClaimEnded = errors.New("the claim ended before the run was acknowledged; Port offers it again")

func (a *Agent) newClaimLease(c polling.Claim) *claimLease {
	ackBy, cancel := context.WithDeadlineCause(context.Background(), c.Expires.Add(-ackMargin(a.cfg.Polling.VisibilityTimeout.D())), errClaimEnded)
	return &claimLease{a: a, c: c, ackBy: ackBy, cancel: cancel}
}

func (l *claimLease) learned() learned                    { return learned{} }
func (l *claimLease) seen(string, time.Time) (bool, bool) { return false, true }
func (l *claimLease) handled(string, time.Time)           {}
func (l *claimLease) handover() context.Context           { return l.ackBy }
func (l *claimLease) park()                               {}
func (l *claimLease) lasting() <-chan struct{}            { return nil }
func (l *claimLease) stopped() context.Context            { return context.Background() }
func (l *claimLease) release(bool)                        { l.cancel() }
func (l *claimLease) shown() (string, string)             { return "", "" }

// held holds until the lease mark ends (for ever without one): past it, other replicas'
// sweeps close the run, and no closing of this replica may race theirs.
func (l *claimLease) held() holding {
	if until := l.until.Load(); until != nil && !time.Now().Before(*until) {
		return holding{err: errMarkEnded, forGood: true}
	}
	return holding{}
}

// acting ends with the lease mark.
func (l *claimLease) acting(parent context.Context) (context.Context, context.CancelFunc) {
	if until := l.until.Load(); until != nil {
		return context.WithDeadlineCause(parent, *until, errMarkEnded)
	}
	return context.WithCancel(parent)
}

// take writes the run's lease mark (an action run with a bound: a node run has no
// externalRunId, and a run whose action has no timeout may run for ever) and then
// acknowledges the run, both before the claim ends: the mark first, so a replica killed in
// between leaves a run that is either still pending (Port offers it again) or marked (a
// sweep closes it). A mark Port refuses is logged: such a run is not closed for this
// replica if it dies (README "Delivery"). A 409 means another replica acknowledged it
// first: it runs there.
func (l *claimLease) take(ctx context.Context, bound time.Duration) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(l.ackBy, cancel)()
	if !l.c.Node && bound > 0 {
		// The margin leases allow for requests under way and clocks apart.
		until := time.Now().Add(bound)
		mark := leaseMark(holder(), until.Add(config.LeaseMargin))
		if err := l.a.api.PatchRun(ctx, l.c.ID, portapi.RunPatch{ExternalRunID: &mark}); err != nil {
			l.a.log.Warn("could not write the run's lease in Port; if this replica dies, the run stays open",
				zap.String("run_id", l.c.ID), zap.Error(err))
		} else {
			l.until.Store(&until)
		}
	}
	ack := l.a.api.AckRun
	if l.c.Node {
		ack = l.a.api.AckNodeRun
	}
	switch err := ack(ctx, l.c.ID); {
	case errors.Is(err, portapi.ErrClaimedElsewhere):
		// Counted once, as admit counted it (accepted), like a Kafka run handed over before
		// it was taken.
		return fmt.Errorf("another replica acknowledged the run first: %w", err)
	case err != nil:
		return fmt.Errorf("not acknowledged before the claim ended; left for Port to offer again: %w", err)
	}
	return nil
}

// sweepLeases closes, every polling.sweepInterval until ctx ends, the runs whose lease
// ended while Port still shows them in progress.
func (a *Agent) sweepLeases(ctx, report context.Context, wg *sync.WaitGroup) {
	wg.Go(func() {
		every := a.cfg.Polling.SweepInterval.D()
		for {
			// Replicas started together would sweep together and close the same runs twice
			// (Port refuses the second): each waits a random 0.5-1.5 intervals.
			t := time.NewTimer(every/2 + rand.N(every))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			a.sweepOnce(ctx, report)
		}
	})
}

func (a *Agent) sweepOnce(ctx, report context.Context) {
	runs, err := a.api.ListActiveRuns(ctx)
	if err != nil {
		a.log.Warn("listing the runs in progress for ended leases failed", zap.Error(err))
		return
	}
	now := time.Now()
	for _, ar := range runs {
		until, ok := leaseEnd(ar.ExternalRunID)
		if !ok || ar.PendingExecution || now.Before(until) || a.seen.holds(ar.ID) {
			continue
		}
		// Its holder can no longer act on it, and nobody else ever will: closed as
		// interrupted through the lifecycle's own step. Its message is not at hand, so it is
		// never run again here (README "Delivery").
		r := &run{lease: ownLease{}, at: runAt{offset: -1}, where: "sweep", sent: now,
			stop: ctx, work: ctx, report: report, interrupted: true}
		a.received(r, runmsg.Run{ID: ar.ID, Action: ar.Action}, a.actions[ar.Action])
		a.live(r, takeToClose)
	}
}

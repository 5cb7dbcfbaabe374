package agent

import (
	"context"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/portapi"
	"github.com/port-runner/port-runner/metrics"
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

// leaseSkew is what the lease allows for between two replicas' clocks.
const leaseSkew = 10 * time.Second

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

// takeLease writes the run's lease before it is acknowledged. A run whose action has no
// timeout gets none (its command may run for ever), nor one whose lease Port refuses: such
// a run is not closed for this replica if it dies (README "Delivery").
func (a *Agent) takeLease(ctx context.Context, runID string, timeout time.Duration, log *zap.Logger) {
	if timeout <= 0 {
		return
	}
	until := time.Now().Add(timeout + config.KillGrace + a.timings.closingBudget + leaseSkew)
	mark := leaseMark(holder(), until)
	if err := a.api.PatchRun(ctx, runID, portapi.RunPatch{ExternalRunID: &mark}); err != nil {
		log.Warn("could not write the run's lease in Port; if this replica dies, the run stays open", zap.Error(err))
	}
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
	for _, r := range runs {
		until, ok := leaseEnd(r.ExternalRunID)
		if !ok || r.PendingExecution || now.Before(until) || a.seen.holds(r.ID) {
			continue
		}
		log := a.log.With(zap.String("run_id", r.ID), zap.String("action", r.Action))
		if a.closeInterrupted(report, a.api, r.ID, r.Action, log) {
			a.metrics.MessagesTotal.WithLabelValues(metrics.OutcomeAccepted).Inc()
		}
	}
}

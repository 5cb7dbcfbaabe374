package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/port-runner/port-runner/consumer"
	"github.com/port-runner/port-runner/executor"
	"github.com/port-runner/port-runner/internal/echo"
	"github.com/port-runner/port-runner/internal/portapi"
	"github.com/port-runner/port-runner/internal/runmsg"
	"github.com/port-runner/port-runner/metrics"
	"github.com/port-runner/port-runner/reporter"
)

// handle takes one record through the pipeline. It reports whether the record is finished:
// skipped for good, or its run closed in Port. A run that never started because the agent
// is stopping is not finished: it stays uncommitted and the next owner runs it.
func (a *Agent) handle(stop, work, report context.Context, t *consumer.Ticket) bool {
	rec := t.Record
	where := fmt.Sprintf("%s/%d@%d", rec.Topic, rec.Partition, rec.Offset)
	run, err := a.decoder.Decode(rec.Value)
	if err != nil {
		var skip *runmsg.SkipError
		outcome := metrics.OutcomeInvalid
		if errors.As(err, &skip) && skip.Reason == runmsg.ReasonBadSignature {
			outcome = metrics.OutcomeBadSignature
		}
		a.metrics.MessagesTotal.WithLabelValues(outcome).Inc()
		if !a.unsigned(rec.Value, where, err) {
			a.log.Warn("skipping message", zap.String("at", where), zap.String("outcome", outcome), zap.Error(err))
		}
		return true
	}
	act, ok := a.lookupAction(&run)
	if !ok {
		// Another deployment with another group may own this action.
		a.metrics.MessagesTotal.WithLabelValues(metrics.OutcomeIgnored).Inc()
		a.log.Debug("ignoring run of an action not configured here", zap.String("at", where),
			zap.String("run_id", run.ID), zap.String("action", echo.Cut(run.Action)))
		return true
	}
	log := a.log.With(zap.String("run_id", run.ID), zap.String("action", run.Action))
	life := a.lives.receive(runAt{rec.Topic, rec.Partition, rec.Offset}, run.ID, run.Action, t.Handover)
	defer life.leave()
	// Port requests about this run (retries, token refreshes) log its action too.
	report = portapi.WithLogFields(report, zap.String("action", run.Action))
	if t.Prior == consumer.PriorFinished {
		a.metrics.MessagesTotal.WithLabelValues(metrics.OutcomeDuplicate).Inc()
		log.Info("skipping a run an earlier owner of the partition closed", zap.String("at", where))
		return true
	}
	// A second copy of a run this replica is handling waits for the first one's outcome:
	// finished -> a duplicate; not finished (left for redelivery) -> this copy takes it.
	for {
		claimed, running := a.seen.claim(run.ID)
		if claimed {
			break
		}
		if running == nil {
			a.metrics.MessagesTotal.WithLabelValues(metrics.OutcomeDuplicate).Inc()
			log.Info("skipping a run this replica already closed", zap.String("at", where))
			return true
		}
		select {
		case <-running:
		case <-work.Done():
			return false
		}
	}
	life.to(phaseClaimed)
	finished := false
	defer func() {
		if finished {
			life.to(phaseCommittable)
		}
		a.seen.end(run.ID, finished)
	}()

	rerun := false
	// A message signed long ago may be a replay (verified signatures only: an unverified
	// timestamp proves nothing): Port decides whether its run is still open.
	old := !run.SignedAt.IsZero() && time.Since(run.SignedAt) > a.cfg.Security.MaxMessageAge.D()
	if t.Prior == consumer.PriorStarted || t.Prior == consumer.PriorUnknown || old {
		// An earlier owner started this run and never recorded its end, nothing says
		// whether anyone ran it, or the message is old: only Port knows whether it was
		// closed. These are the only cases that cost a Port request up front.
		pr, err := a.lookupRun(stop, report, a.target(run), life, t.Prior, log)
		switch {
		case portapi.Permanent(err):
			// Port refuses to say (the run is unknown to it, say): nothing can be reported
			// for this run, and retrying later cannot change that.
			a.metrics.MessagesTotal.WithLabelValues(metrics.OutcomeInvalid).Inc()
			log.Error("Port refused the lookup of the run; skipping it", zap.String("prior", t.Prior.String()), zap.Error(err))
			finished = true
			return true
		case err != nil:
			// The agent stops or the partition is being handed over: the next owner asks.
			log.Info("not started: cannot tell whether the run was closed; left for redelivery", zap.String("prior", t.Prior.String()), zap.Error(err))
			return false
		case pr.Terminated():
			a.metrics.MessagesTotal.WithLabelValues(metrics.OutcomeDuplicate).Inc()
			log.Info("skipping a run Port shows terminated", zap.String("at", where), zap.String("prior", t.Prior.String()),
				zap.Bool("old_message", old), zap.String("status", pr.Status))
			finished = true
			return true
		case t.Prior != consumer.PriorStarted:
			// Open in Port and nobody recorded starting it: it runs as a fresh run.
		case act.cfg.OnInterrupted != "rerun":
			finished = a.closeInterrupted(report, a.target(run), run.ID, run.Action, log)
			if finished {
				a.metrics.MessagesTotal.WithLabelValues(metrics.OutcomeAccepted).Inc()
			}
			return finished
		default:
			rerun = true
		}
	}
	a.metrics.MessagesTotal.WithLabelValues(metrics.OutcomeAccepted).Inc()

	// Waiting for a slot ends at the first signal, or when the partition is being handed
	// over: a run that has not started by then is the next owner's.
	acquireCtx, cancelAcquire := context.WithCancelCause(work)
	stopAcquire := context.AfterFunc(stop, func() { cancelAcquire(context.Cause(stop)) })
	stopHandover := context.AfterFunc(t.Handover, func() { cancelAcquire(consumer.ErrNotOwned) })
	release, err := a.pool.Acquire(acquireCtx, run.Action)
	stopAcquire()
	stopHandover()
	cancelAcquire(nil)
	if err != nil {
		log.Info("not started; left for redelivery", zap.String("at", where), zap.Error(err))
		return false
	}
	life.holdSlot()
	defer func() { life.dropSlot(); release() }()
	if stop.Err() != nil {
		log.Info("not started: agent stopping; left for redelivery", zap.String("at", where))
		return false
	}

	// Durable before the command runs: if this agent dies, the next owner knows it may have.
	if err := t.Started(stop); err != nil {
		log.Info("not started; left for redelivery", zap.String("at", where), zap.Error(err))
		return false
	}
	life.to(phaseStartDurable)
	finished = a.execute(work, report, run, act, life, rerun, where, log).finished
	return finished
}

// interruptedLabel is how Port shows a run whose agent died under it (README "Delivery").
const interruptedLabel = executor.InterruptedLabel

// closeInterrupted closes, as FAILURE, a run an earlier agent started and never finished.
func (a *Agent) closeInterrupted(report context.Context, tgt target, runID, action string, log *zap.Logger) bool {
	runLog := a.reporter.StartOn(report, tgt, runID, nil, zap.String("action", action))
	outcome := reporter.Outcome{
		Label:   interruptedLabel,
		Summary: "port-runner: " + interruptedLabel + " before the run ended; not run again (onInterrupted: fail)",
	}
	if !a.closeRun(report, tgt, runID, false, log, nil, func(ctx context.Context) error { return runLog.Close(ctx, outcome) }) {
		return false
	}
	a.metrics.RunsTotal.WithLabelValues(action, "failure").Inc()
	log.Warn("closed a run interrupted by a stopped agent", zap.String("label", interruptedLabel))
	return true
}

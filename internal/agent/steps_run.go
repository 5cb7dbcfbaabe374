package agent

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/port-runner/port-runner/executor"
	"github.com/port-runner/port-runner/metrics"
	"github.com/port-runner/port-runner/reporter"
)

// The steps from the decision to run a run here to its end in Port.

// admit accepts the run and waits for its slot: its action's limit, then the pool's. The
// wait ends at the first signal, or when the run's partition is handed over: a run not
// taken by then is the next owner's.
func admit(a *Agent, r *run) verdict {
	a.count(metrics.OutcomeAccepted)
	r.life.to(phaseAdmitted)
	bound := r.untilHandover(r.work)
	release, err := a.pool.Acquire(bound.ctx, r.msg.Action)
	bound.end()
	if err != nil {
		r.log.Info("not started; left for the next owner", zap.String("at", r.where), zap.Error(err))
		return left
	}
	r.slot = release
	r.life.holdSlot()
	if r.stop.Err() != nil {
		r.log.Info("not started: agent stopping; left for the next owner", zap.String("at", r.where))
		return left
	}
	return then(take)
}

// take makes the run this replica's before its command runs, durably: if this replica
// dies, the next owner knows it may have run; at a handover it is leased to this one. The
// take goes on while the run is readied (execute: its files, its token, the shim up to the
// command's exec), and the command starts only once it succeeded: the executor's gate
// (took). A take that fails leaves the run, its command never started.
func take(a *Agent, r *run) verdict {
	r.taking = startTake(r, a.bound(r))
	return then(execute)
}

// takeToClose takes a run an earlier holder started and can no longer act on, to close it
// as interrupted (onInterrupted: fail).
func takeToClose(a *Agent, r *run) verdict {
	if !r.takeLease(a.bound(r)) {
		return left
	}
	return then(closeInterrupted)
}

func (r *run) takeLease(bound time.Duration) bool { return r.taken(r.lease.take(r.stop, bound)) }

// taken acts on the end of the run's take (err: it failed, and the run is left): from now on
// the run is this replica's, its start mark durable, and its way in remembers it.
func (r *run) taken(err error) bool {
	if err != nil {
		r.log.Info("not started; left for the next owner", zap.String("at", r.where), zap.Error(err))
		return false
	}
	r.life.to(phaseStartDurable)
	r.lease.handled(r.msg.ID, r.sent)
	return true
}

// execute runs the command (execute.go) while the run's lease holds. A run Port ended
// meanwhile is finished without a closing: Port has its one termination. A run whose take
// failed is left, nothing of it seen outside this replica.
func execute(a *Agent, r *run) verdict {
	r.ex = a.execute(r)
	if r.ex.left {
		return left
	}
	if r.ex.cancelled {
		a.endCancelled(r)
		return finished
	}
	return then(closing)
}

// closing closes the run in Port with how its command ended.
func closing(a *Agent, r *run) verdict {
	ex := r.ex
	if !a.closeRun(r, ex.res.Success, func(ctx context.Context) error { return ex.runLog.Close(ctx, ex.outcome) }) {
		return left
	}
	a.log.Info("run closed", zap.String("run_id", r.msg.ID), zap.String("action", r.msg.Action), // r.log's (received)
		zap.String("result", resultOf(ex.res)), zap.String("label", ex.res.Label), zap.Duration("duration", ex.res.Duration))
	return finished
}

// interruptedLabel is how Port shows a run whose agent died under it (README "Delivery").
const interruptedLabel = executor.InterruptedLabel

// closeInterrupted closes, as FAILURE, a run an earlier holder started and can no longer
// act on (onInterrupted: fail).
func closeInterrupted(a *Agent, r *run) verdict {
	runLog := a.reporter.StartOn(r.report, a.target(r.msg), r.msg.ID, nil, zap.String("action", r.msg.Action))
	outcome := reporter.Outcome{
		Label:   interruptedLabel,
		Summary: "port-runner: " + interruptedLabel + " before the run ended; not run again (onInterrupted: fail)",
	}
	r.life.to(phaseCommandEnded)
	if !a.closeRun(r, false, func(ctx context.Context) error { return runLog.Close(ctx, outcome) }) {
		return left
	}
	a.count(metrics.OutcomeAccepted)
	a.metrics.CountRun(r.msg.Action, "failure")
	r.log.Warn("closed a run interrupted by a stopped agent", zap.String("label", interruptedLabel))
	return finished
}

// bound is how long a run taken now may be acted on here at most: its action's timeout, the
// kill grace and the closing budget; 0 when its action has no timeout (no bound).
func (a *Agent) bound(r *run) time.Duration {
	if r.act == nil || r.act.cfg.Timeout.D() <= 0 {
		return 0
	}
	return r.act.cfg.Timeout.D() + a.timings.closeGrace()
}

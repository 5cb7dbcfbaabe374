package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/port-runner/port-runner/internal/backoff"
	"github.com/port-runner/port-runner/internal/portapi"
	"github.com/port-runner/port-runner/internal/runmsg"
	"github.com/port-runner/port-runner/metrics"
)

// The steps from a record to the decision to run it here; steps_run.go has the rest.

// decode reads the message: a run an action here takes goes on; anything else is skipped
// for good (route.go), but a claimed run that cannot be read is closed (refuseClaimed).
func decode(a *Agent, r *run) verdict {
	msg, err := a.decodeRaw(r)
	if err != nil {
		var skip *runmsg.SkipError
		outcome := metrics.OutcomeInvalid
		if errors.As(err, &skip) {
			outcome = string(skip.Reason) // the reasons are outcomes: invalid, bad_signature, ignored
		}
		a.count(outcome)
		if r.shape != shapeMessage {
			return a.refuseClaimed(r, err)
		}
		if !a.unsigned(r.raw, r.where, err) {
			a.log.Warn("skipping message", zap.String("at", r.where), zap.String("outcome", outcome), zap.Error(err))
		}
		return finished
	}
	act, why := a.route(&msg)
	if act == nil {
		return a.leave(r, msg, why)
	}
	a.received(r, msg, act)
	return then(inherit)
}

// decodeRaw reads r's bytes as its shape says; a claimed run must read as the run its claim
// named.
func (a *Agent) decodeRaw(r *run) (runmsg.Run, error) {
	if r.shape == shapeMessage {
		return a.decoder.Decode(r.raw)
	}
	msg, err := a.decoder.DecodeClaimed(r.raw, r.shape == shapeClaimedNodeRun)
	if err == nil && msg.ID != r.id {
		return runmsg.Run{}, fmt.Errorf("claimed run %q reads as run %q", r.id, msg.ID)
	}
	return msg, err
}

// inherit skips a run an earlier holder decided.
func inherit(a *Agent, r *run) verdict {
	if r.lease.learned().what == inheritFinished {
		a.count(metrics.OutcomeDuplicate)
		r.log.Info("skipping a run an earlier owner of the partition closed", zap.String("at", r.where))
		return finished
	}
	return then(claim)
}

// claim holds the run id here. A second copy of a run this replica is handling waits for the
// first one's outcome: finished -> a duplicate; not finished (left) -> this copy takes it.
func claim(a *Agent, r *run) verdict {
	for {
		claimed, running := a.seen.claim(r.msg.ID)
		if claimed {
			r.claimed = true
			r.life.to(phaseClaimed)
			return then(recall)
		}
		if running == nil {
			a.count(metrics.OutcomeDuplicate)
			r.log.Info("skipping a run this replica already closed", zap.String("at", r.where))
			return finished
		}
		select {
		case <-running:
		case <-r.work.Done():
			return left
		case <-r.lease.handover().Done():
			return left
		}
	}
}

// recall decides who must be heard before the run may run here: an earlier holder that
// took it (its lease, or the fence), Port (nothing says whether anyone ran it; an old
// message; a message older than what the partition's history covers), or nobody. A run the
// history has seen under another message is a copy: skipped at no Port request.
func recall(a *Agent, r *run) verdict {
	l := r.lease.learned()
	if l.what == inheritHeld {
		return then(await)
	}
	dup, covered := r.lease.seen(r.msg.ID, r.sent)
	switch {
	case dup:
		a.count(metrics.OutcomeDuplicate)
		r.log.Info("skipping a copy of a run already handled", zap.String("at", r.where))
		return finished
	case l.what == inheritUnknown, r.old, !covered:
		return then(ask)
	}
	return then(admit)
}

// watchRetry paces the lookups of a run another replica holds under a lease: they cost
// Port's budget (at the lowest priority) for as long as the run lasts: a handful in its
// first minute, then about one a minute (full jitter up to 2m; BENCHMARKS.md).
var watchRetry = backoff.Policy{Base: 2 * time.Second, Max: 2 * time.Minute}

// await waits for an earlier holder of the run: one holding it under a lease (a handover)
// runs and closes it itself, so Port is asked now and then, at the lowest priority, and
// once it shows the run terminated the run is skipped; one that lost the partition has its
// commands dead after the fence and never closes them. Once the earlier holder can no
// longer act on it, Port decides (ask): the run was interrupted.
func await(a *Agent, r *run) verdict {
	r.life.to(phaseAwaiting)
	l := r.lease.learned()
	bound := r.untilHandover(r.report)
	defer bound.end()
	ctx := bound.ctx
	r.log.Info("waiting for the replica that took the run", zap.String("at", r.where), zap.String("holder", l.holder))
	r.lease.park() // the wait may last hours: the pool goes on meanwhile
	for attempt := 0; ; attempt++ {
		if l.holder != "" && !isDone(l.ended) {
			if pr, err := a.target(r.msg).WatchRun(ctx, r.msg.ID); err == nil && pr.Terminated() {
				a.count(metrics.OutcomeDuplicate)
				r.log.Info("skipping a run the replica holding it closed", zap.String("status", pr.Status))
				return finished
			}
		}
		t := time.NewTimer(watchRetry.Delay(attempt, 0))
		select {
		case <-l.ended:
			t.Stop()
			r.interrupted = true
			return then(ask)
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			r.log.Info("not decided: left for the next owner", zap.Error(context.Cause(ctx)))
			return left
		}
	}
}

// ask looks the run up in Port before it runs: terminated -> skipped; open -> it runs as a
// fresh run, or, when an earlier holder took it and can no longer act on it, as its
// action's onInterrupted says.
func ask(a *Agent, r *run) verdict {
	r.life.to(phaseAsking)
	pr, err := a.lookupRun(r)
	switch {
	case portapi.Permanent(err):
		// Port refuses to say (the run is unknown to it, say): nothing can be reported
		// for this run, and retrying later cannot change that.
		a.count(metrics.OutcomeInvalid)
		r.log.Error("Port refused the lookup of the run; skipping it", zap.Error(err))
		return finished
	case err != nil:
		r.log.Info("not started: cannot tell whether the run was closed; left for the next owner", zap.Error(err))
		return left
	case pr.Terminated():
		a.count(metrics.OutcomeDuplicate)
		r.log.Info("skipping a run Port shows terminated", zap.String("at", r.where), zap.Bool("interrupted", r.interrupted),
			zap.Bool("old_message", r.old), zap.String("status", pr.Status))
		return finished
	case !r.interrupted:
		return then(admit) // open in Port and nobody took it: a fresh run
	case r.act.cfg.OnInterrupted != "rerun":
		return then(takeToClose)
	}
	r.rerun = true
	return then(admit)
}

// untilHandover is parent, ended also by the first signal and by the handover of the run's
// source: from then on a run this replica has not taken is the next owner's.
// Its end is a value's method rather than a closure: one allocation less for every run
// (admit waits under it).
func (r *run) untilHandover(parent context.Context) handoverBound {
	ctx, cancel := context.WithCancelCause(parent)
	return handoverBound{ctx: ctx, cancel: cancel,
		stopStop:     context.AfterFunc(r.stop, func() { cancel(context.Cause(r.stop)) }),
		stopHandover: context.AfterFunc(r.lease.handover(), func() { cancel(handedOver(r.lease.handover())) }),
	}
}

// handoverBound is untilHandover's context; end ends it.
type handoverBound struct {
	ctx                    context.Context
	cancel                 context.CancelCauseFunc
	stopStop, stopHandover func() bool
}

func (b handoverBound) end() {
	b.stopStop()
	b.stopHandover()
	b.cancel(nil)
}

// errHandedOver: the run's partition went to another replica before this one took the run.
var errHandedOver = errors.New("partition handed over to another agent")

// handedOver is why a way in's handover ended: its own cause (a claim's end), else
// errHandedOver.
func handedOver(handover context.Context) error {
	if err := context.Cause(handover); err != nil && err != handover.Err() {
		return err
	}
	return errHandedOver
}

package agent

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/port-runner/port-runner/internal/portapi"
	"github.com/port-runner/port-runner/internal/runmsg"
	"github.com/port-runner/port-runner/metrics"
	"github.com/port-runner/port-runner/polling"
	"github.com/port-runner/port-runner/reporter"
)

// newSource is transport: polling's way in: claims for as many runs as the pool runs at
// once, node runs too when an action runs them.
func (a *Agent) newSource() (*polling.Source, error) {
	d, err := runmsg.NewDecoder(runmsg.Options{
		Selectors: runmsg.Selectors{RunID: a.cfg.Message.RunID, Action: a.cfg.Message.Action,
			Properties: a.cfg.Message.Properties, Entity: a.cfg.Message.Entity},
		// Claimed runs carry no signature: the authenticated HTTPS answer vouches for them.
		Secret: a.cfg.Port.ClientSecret,
	})
	if err != nil {
		return nil, err
	}
	a.claimedDecoder = d
	nodes := false
	for _, ac := range a.cfg.Actions {
		nodes = nodes || ac.WorkflowNode != nil
	}
	return polling.New(polling.Options{
		API: a.api, Slots: a.cfg.Executor.MaxConcurrent, NodeRuns: nodes,
		MinInterval: a.timings.pollMinInterval, Interval: a.cfg.Polling.Interval.D(),
		Visibility: a.cfg.Polling.VisibilityTimeout.D(), Logger: a.log,
	}), nil
}

// startPolling tells Port this organization's agent polls, as port-agent does at start-up
// (PATCH /v1/organization); a refusal is logged and the agent claims anyway.
func (a *Agent) startPolling(ctx context.Context) {
	if err := a.api.SetStreamer(ctx, "POLLING"); err != nil {
		a.log.Warn("could not tell Port that this organization's agent polls; claiming anyway", zap.Error(err))
	}
}

// ackMargin is kept between the last acknowledgement attempt and the claim's end, so an
// acknowledgement still in flight never lands after another replica claimed the run.
func ackMargin(visibility time.Duration) time.Duration { return min(visibility/5, 5*time.Second) }

// handleClaim takes one claimed run through the pipeline: decode it, wait for a slot,
// acknowledge it (from then on Port offers it to nobody else), run it and close it. Until
// the acknowledgement nothing has started, and a run left unacknowledged comes back to some
// replica once its claim expires (README "Delivery").
func (a *Agent) handleClaim(stop, work, report context.Context, c polling.Claim) {
	where := "claim " + c.ID
	run, err := a.decodeClaimed(c)
	if err != nil {
		a.metrics.MessagesTotal.WithLabelValues(metrics.OutcomeInvalid).Inc()
		a.refuseClaimed(stop, report, c, err)
		return
	}
	act, ok := a.lookupAction(&run)
	if !ok {
		// Another deployment may run it: unacknowledged, Port offers it again.
		a.metrics.MessagesTotal.WithLabelValues(metrics.OutcomeIgnored).Inc()
		a.log.Debug("claimed a run of an action not configured here; left unacknowledged", zap.String("run_id", run.ID), zap.String("action", run.Action))
		return
	}
	log := a.log.With(zap.String("run_id", run.ID), zap.String("action", run.Action))
	life := a.lives.receive(runAt{offset: -1}, run.ID, run.Action, nil)
	defer life.leave()
	report = portapi.WithLogFields(report, zap.String("action", run.Action))
	if claimed, _ := a.seen.claim(run.ID); !claimed {
		// This replica claimed the run again after its first claim expired and still holds
		// that one: the first copy decides.
		a.metrics.MessagesTotal.WithLabelValues(metrics.OutcomeDuplicate).Inc()
		return
	}
	finished := false
	defer func() { a.seen.end(run.ID, finished) }()
	life.to(phaseClaimed)

	// The claim's end bounds the wait for a slot and the acknowledgement: past it another
	// replica may hold the run.
	ackBy := c.Expires.Add(-ackMargin(a.cfg.Polling.VisibilityTimeout.D()))
	claimCtx, cancel := context.WithDeadline(stop, ackBy)
	defer cancel()
	release, err := a.pool.Acquire(claimCtx, run.Action)
	if err != nil {
		log.Info("not started: no slot before the claim ended; left for Port to offer again", zap.Error(err))
		return
	}
	life.holdSlot()
	defer func() { life.dropSlot(); release() }()
	if !c.Node {
		// Before the acknowledgement: once acknowledged, only the lease lets another replica
		// close the run if this one dies.
		a.takeLease(claimCtx, run.ID, act.cfg.Timeout.D(), log)
	}
	if err := a.ack(claimCtx, c); err != nil {
		if errors.Is(err, portapi.ErrClaimedElsewhere) {
			a.metrics.MessagesTotal.WithLabelValues(metrics.OutcomeDuplicate).Inc()
			log.Info("not started: another replica acknowledged the run first")
			return
		}
		log.Info("not started: not acknowledged before the claim ended; left for Port to offer again", zap.Error(err))
		return
	}
	a.metrics.MessagesTotal.WithLabelValues(metrics.OutcomeAccepted).Inc()
	life.to(phaseStartDurable)
	finished = a.execute(work, report, run, act, life, false, where, log).finished
	if finished {
		life.to(phaseCommittable)
	}
}

func (a *Agent) ack(ctx context.Context, c polling.Claim) error {
	if c.Node {
		return a.api.AckNodeRun(ctx, c.ID)
	}
	return a.api.AckRun(ctx, c.ID)
}

// refuseClaimed ends a claimed run that cannot be read: left unacknowledged it would come
// back to every replica after each claim, for ever. It is acknowledged and closed FAILURE
// with the reason, so its author sees it in Port (a Kafka message that cannot be read is
// only skipped: it may not be a run at all; a claimed one is).
func (a *Agent) refuseClaimed(stop, report context.Context, c polling.Claim, cause error) {
	log := a.log.With(zap.String("claimed_run_id", c.ID))
	if runmsg.CheckID(c.ID) != nil {
		log.Warn("skipping a claimed run with no usable id; left unacknowledged", zap.Error(cause))
		return
	}
	claimCtx, cancel := context.WithDeadline(stop, c.Expires.Add(-ackMargin(a.cfg.Polling.VisibilityTimeout.D())))
	defer cancel()
	if err := a.ack(claimCtx, c); err != nil {
		log.Warn("a claimed run that cannot be read was not acknowledged", zap.NamedError("cause", cause), zap.Error(err))
		return
	}
	var tgt target = a.api
	if c.Node {
		tgt = portapi.NodeRuns{C: a.api}
	}
	runLog := a.reporter.StartOn(report, tgt, c.ID, nil)
	// The cause stays in the agent's log: it may quote the run's inputs.
	outcome := reporter.Outcome{Label: "invalid run", Summary: "port-runner could not read this run; the agent's log says why"}
	a.closeRun(report, tgt, c.ID, false, log, nil, func(ctx context.Context) error { return runLog.Close(ctx, outcome) })
	log.Warn("closed a claimed run that cannot be read", zap.Error(cause))
}

package agent

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/port-runner/port-runner/internal/runmsg"
	"github.com/port-runner/port-runner/polling"
	"github.com/port-runner/port-runner/reporter"
)

// newSource is transport: polling's way in: claims for as many runs as the pool runs at
// once, node runs too when an action runs them.
func (a *Agent) newSource() *polling.Source {
	nodes := false
	for _, ac := range a.cfg.Actions {
		nodes = nodes || ac.WorkflowNode != nil
	}
	return polling.New(polling.Options{
		API: a.api, Slots: a.cfg.Executor.MaxConcurrent, NodeRuns: nodes,
		MinInterval: a.timings.pollMinInterval, Interval: a.cfg.Polling.Interval.D(),
		Visibility: a.cfg.Polling.VisibilityTimeout.D(), Logger: a.log,
	})
}

// poll is Run with transport: polling: no group to join, so it only needs a token; then it
// claims until ctx ends (the first signal), and drains as a consuming replica does. Each
// claimed run lives the lifecycle of run.go under its claim's lease (claimlease.go), and
// a sweep closes the runs of replicas that died holding them.
func (a *Agent) poll(ctx, kill context.Context) error {
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := a.api.Token(startCtx); err != nil {
		return fmt.Errorf("port api: %w", err)
	}
	a.startPolling(startCtx)
	stopServers, err := a.startServers()
	if err != nil {
		return err
	}
	defer stopServers()
	work, report, drained := a.drain(ctx, kill)
	var sweeps sync.WaitGroup
	a.sweepLeases(ctx, report, &sweeps)
	err = a.source.Run(ctx, func(c polling.Claim) {
		shape := shapeClaimedRun
		if c.Node {
			shape = shapeClaimedNodeRun
		}
		a.arrive(ctx, work, report, arrival{lease: a.newClaimLease(c), raw: c.Raw, at: runAt{offset: -1},
			where: "claim " + c.ID, sent: time.Now(), shape: shape, id: c.ID})
	})
	sweeps.Wait()
	drained()
	return err
}

// startPolling tells Port this organization's agent polls, as port-agent does at start-up
// (PATCH /v1/organization); a refusal is logged and the agent claims anyway.
func (a *Agent) startPolling(ctx context.Context) {
	if err := a.api.SetStreamer(ctx, "POLLING"); err != nil {
		a.log.Warn("could not tell Port that this organization's agent polls; claiming anyway", zap.Error(err))
	}
}

// refuseClaimed ends a claimed run that cannot be read: left unacknowledged it would come
// back to every replica after each claim, for ever. It is taken (acknowledged) and closed
// FAILURE with the reason, so its author sees it in Port (a Kafka message that cannot be
// read is only skipped: it may not be a run at all; a claimed one is).
func (a *Agent) refuseClaimed(r *run, cause error) verdict {
	log := a.log.With(zap.String("claimed_run_id", r.id))
	if runmsg.CheckID(r.id) != nil {
		log.Warn("skipping a claimed run with no usable id; left unacknowledged", zap.Error(cause))
		return finished
	}
	r.msg.ID, r.log = r.id, log
	// The cause stays in the agent's log: it may quote the run's inputs.
	v := a.closeUnrun(r, reporter.Outcome{Label: "invalid run", Summary: "port-runner could not read this run; the agent's log says why"})
	if v.finished {
		log.Warn("closed a claimed run that cannot be read", zap.Error(cause))
	} else {
		log.Warn("a claimed run that cannot be read was not closed", zap.Error(cause))
	}
	return v
}

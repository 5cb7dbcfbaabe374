package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/port-runner/port-runner/executor"
	"github.com/port-runner/port-runner/metrics"
	"github.com/port-runner/port-runner/reporter"
	"github.com/port-runner/port-runner/runmsg"
)

// handle takes one record through the pipeline. It reports whether the record is finished:
// skipped for good, or its run closed in Port. A run that never started because the agent
// is stopping is not finished: it stays uncommitted and the next owner runs it.
func (a *Agent) handle(stop, work, report context.Context, rec *kgo.Record) bool {
	where := fmt.Sprintf("%s/%d@%d", rec.Topic, rec.Partition, rec.Offset)
	run, err := a.decoder.Decode(rec.Value)
	if err != nil {
		var skip *runmsg.SkipError
		outcome := metrics.OutcomeInvalid
		if errors.As(err, &skip) && skip.Reason == runmsg.ReasonBadSignature {
			outcome = metrics.OutcomeBadSignature
		}
		a.metrics.MessagesTotal.WithLabelValues(outcome).Inc()
		a.log.Warn("skipping message", zap.String("at", where), zap.String("outcome", outcome), zap.Error(err))
		return true
	}
	act, ok := a.actions[run.Action]
	if !ok {
		// Another deployment with another group may own this action.
		a.metrics.MessagesTotal.WithLabelValues(metrics.OutcomeIgnored).Inc()
		a.log.Debug("ignoring run of an action not configured here", zap.String("at", where),
			zap.String("run_id", run.ID), zap.String("action", run.Action))
		return true
	}
	log := a.log.With(zap.String("run_id", run.ID), zap.String("action", run.Action))
	if !a.seen.begin(run.ID) {
		a.metrics.MessagesTotal.WithLabelValues(metrics.OutcomeDuplicate).Inc()
		log.Info("skipping a run this replica is running or already closed", zap.String("at", where))
		return true
	}
	a.metrics.MessagesTotal.WithLabelValues(metrics.OutcomeAccepted).Inc()
	finished := false
	defer func() {
		if finished {
			a.seen.finish(run.ID)
		} else {
			a.seen.forget(run.ID)
		}
	}()

	release, err := a.pool.AcquireAction(stop, run.Action)
	if err != nil {
		log.Info("not started: agent stopping; left for redelivery", zap.String("at", where))
		return false
	}
	defer release()
	if stop.Err() != nil {
		log.Info("not started: agent stopping; left for redelivery", zap.String("at", where))
		return false
	}

	spec, secrets, err := act.spec(run)
	runLog := a.reporter.Start(report, run.ID, secrets)
	var res executor.Result
	if err != nil {
		res = executor.Result{ExitCode: -1, Label: "could not start: " + err.Error()}
		log.Warn("run could not start", zap.Error(err))
	} else {
		log.Info("run started", zap.String("at", where))
		a.metrics.RunsInFlight.Inc()
		res = executor.Run(work, spec, runLog)
		a.metrics.RunsInFlight.Dec()
		a.metrics.RunDuration.WithLabelValues(run.Action).Observe(res.Duration.Seconds())
	}
	result := "failure"
	if res.Success {
		result = "success"
	}
	a.metrics.RunsTotal.WithLabelValues(run.Action, result).Inc()

	err = runLog.Close(report, reporter.Outcome{
		Success: res.Success,
		Label:   res.Label,
		Summary: fmt.Sprintf("port-runner: %s after %s", res.Label, res.Duration.Round(time.Millisecond)),
	})
	if err != nil {
		log.Error("run not closed in Port; it stays uncommitted for redelivery", zap.Error(err))
		return false
	}
	log.Info("run closed", zap.String("result", result), zap.String("label", res.Label), zap.Duration("duration", res.Duration))
	finished = true
	return true
}

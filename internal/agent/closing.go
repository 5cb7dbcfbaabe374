package agent

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/port-runner/port-runner/internal/backoff"
	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/portapi"
)

// DefaultClosingBudget is how long the agent keeps trying to close one run in Port once its
// command has ended. It is part of the group's rebalance timeout (config.Kafka.RebalanceTimeout).
const DefaultClosingBudget = config.ClosingBudget

// closingAnswer is what one closing attempt tells the retry loop.
type closingAnswer int

const (
	answerClosed  closingAnswer = iota // Port has the termination
	answerRetry                        // 401s, 5xx, network, a malformed answer: try again
	answerRefused                      // Port refuses this request for good (a 4xx)
)

// classifyClosing is the one place the delivery code reads portapi's classification, so
// a change there meets one function here.
func classifyClosing(err error) closingAnswer {
	switch {
	case err == nil:
		// (A refusal of a run Port already shows terminated comes back as nil: CloseRun asks.)
		return answerClosed
	case portapi.Permanent(err):
		return answerRefused
	default:
		return answerRetry
	}
}

// minimalClosing is the smallest request Port must accept: the termination and a short,
// fixed text (no output, no label from the command, so nothing in it can be what Port
// refused).
func minimalClosing(success bool) portapi.Closing {
	if success {
		return portapi.Closing{TerminationStatus: portapi.StatusSuccess, StatusLabel: "succeeded",
			Message: "port-runner: the run succeeded; Port refused its full closing request, so its last output is missing"}
	}
	return portapi.Closing{TerminationStatus: portapi.StatusFailure, StatusLabel: "failed",
		Message: "port-runner: the run failed; Port refused its full closing request, so its last output is missing"}
}

// closeRun closes runID in Port (on its target) within the closing budget: send (the full closing request)
// is retried on every failure but a permanent refusal, which gets one minimal fallback
// close. It reports whether the record is finished: closed, or refused even the fallback
// and held until the budget ended (counted and logged: the run stays open in Port). A run
// not closed for any other reason is left for redelivery.
func (a *Agent) closeRun(report context.Context, tgt target, runID string, success bool, log *zap.Logger, life *runLife, send func(context.Context) error) bool {
	ctx, cancel := context.WithTimeout(report, a.timings.closingBudget)
	defer func() { cancel() }()
	fallback, extended := false, false
	for attempt := 0; ; attempt++ {
		var err error
		if !fallback {
			err = send(ctx)
		} else {
			_, err = tgt.CloseRun(ctx, runID, minimalClosing(success))
		}
		switch classifyClosing(err) {
		case answerClosed:
			life.to(phaseClosed)
			if fallback {
				log.Warn("run closed with the minimal fallback request")
			}
			return true
		case answerRefused:
			if !fallback {
				log.Warn("Port refused the run's closing request; sending the minimal one", zap.Error(err))
				fallback = true
				continue
			}
			a.metrics.RunsUnclosed.Inc()
			log.Error("Port refused even the minimal closing request: the run stays open in Port", zap.Error(err))
			// The commit does not pass the run before the budget ends: a restart meanwhile
			// hands it to the next owner, which tries again.
			if !extended {
				<-ctx.Done()
			}
			return report.Err() == nil
		}
		if ctx.Err() != nil && !extended && report.Err() == nil && life.ours() {
			// Past the budget the run is still ours until its partition is handed over or
			// the agent stops: go on trying rather than leave it open until a restart.
			extended = true
			cancel()
			ctx, cancel = context.WithCancel(report)
			stopExt := context.AfterFunc(life.handover, cancel)
			defer stopExt()
			log.Warn("closing budget spent; retrying for as long as the run's partition stays here",
				zap.Duration("closingBudget", a.timings.closingBudget), zap.Error(err))
		}
		if ctx.Err() != nil {
			why := "closing budget spent"
			if extended {
				why = "partition handed over"
			}
			if report.Err() != nil {
				why = "agent stopping"
			}
			log.Error("run not closed in Port; left for redelivery", zap.String("why", why),
				zap.Duration("closingBudget", a.timings.closingBudget), zap.Error(err))
			return false
		}
		wait := backoff.Policy{Base: 200 * time.Millisecond, Max: 5 * time.Second}.Delay(attempt, 0)
		log.Warn("closing the run failed; retrying", zap.Duration("wait", wait), zap.Error(err))
		_ = backoff.Sleep(ctx, wait) // a done ctx is handled at the top of the next turn
	}
}

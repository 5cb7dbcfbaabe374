package agent

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/port-runner/port-runner/internal/backoff"
	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/portapi"
	"github.com/port-runner/port-runner/reporter"
)

// DefaultClosingBudget is how long the agent keeps trying to close one run in Port once its
// command has ended. It is part of a replica's drain (config.Config.Drain), which its
// leases last after it left the group.
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

// closeUnrun closes r in Port with outcome, a run this replica ends without running it (an
// unmatched node run, a claimed run that cannot be read). A claimed run is acknowledged
// first, as any claimed run this replica ends: Port offers an unacknowledged run again. A
// run of the topic needs no take: its record stays this replica's until it is released.
func (a *Agent) closeUnrun(r *run, outcome reporter.Outcome) verdict {
	if r.shape != shapeMessage {
		if err := r.lease.take(r.stop, 0); err != nil {
			r.log.Warn("a claimed run ended here was not acknowledged; left for Port to offer again", zap.Error(err))
			return left
		}
	}
	runLog := a.reporter.StartOn(r.report, a.target(r.msg), r.msg.ID, nil)
	if !a.closeRun(r, false, func(ctx context.Context) error { return runLog.Close(ctx, outcome) }) {
		return left
	}
	return finished
}

// closeRun closes r in Port (on its target) within the closing budget: send (the full
// closing request) is retried on every failure but a permanent refusal, which gets one
// minimal fallback close. It is sent only while this replica holds the run's lease: a
// fenced replica waits until it is confirmed again, and one whose lease is gone for good
// (the run's partition lost, the drain's bound passed, a polled run's lease mark ended)
// never closes it (its next holder does). Each try ends with the lease (runLease.acting). It reports whether the record is finished: closed, or refused even the
// fallback and held until the budget ended (counted and logged: the run stays open in
// Port). Past the budget it goes on for as long as the lease holds and the agent runs.
func (a *Agent) closeRun(r *run, success bool, send func(context.Context) error) bool {
	ctx, cancel := context.WithTimeout(r.report, a.timings.closingBudget)
	defer cancel()
	tgt := a.target(r.msg)
	fallback, extended := false, false
	for attempt := 0; ; attempt++ {
		var err error
		switch h := r.lease.held(); {
		case h.forGood:
			r.log.Warn("run not closed here: its lease is no longer this replica's; its next holder decides it", zap.Error(h.err))
			return false
		case h.err != nil:
			err = h.err // not now: wait until this replica is confirmed again
		default:
			// The request ends with the lease: none goes out once another replica may act.
			actx, done := r.lease.acting(ctx)
			if fallback {
				_, err = tgt.CloseRun(actx, r.msg.ID, minimalClosing(success))
			} else {
				err = send(actx)
			}
			done()
		}
		switch classifyClosing(err) {
		case answerClosed:
			r.life.to(phaseClosed)
			if fallback {
				r.log.Warn("run closed with the minimal fallback request")
			}
			return true
		case answerRefused:
			if !fallback {
				r.log.Warn("Port refused the run's closing request; sending the minimal one", zap.Error(err))
				fallback = true
				continue
			}
			a.metrics.RunsUnclosed.Inc()
			r.log.Error("Port refused even the minimal closing request: the run stays open in Port", zap.Error(err))
			// The commit does not pass the run before the budget ends: a restart meanwhile
			// hands it to the next owner, which tries again.
			if !extended {
				<-ctx.Done()
			}
			return r.report.Err() == nil
		}
		if ctx.Err() != nil && !extended && r.report.Err() == nil {
			// Past the budget the run is still this replica's for as long as it holds the
			// lease (the partition's owner waits for it): go on trying.
			extended = true
			var cancelExt context.CancelFunc
			ctx, cancelExt = context.WithCancel(r.report)
			defer cancelExt()
			r.log.Warn("closing budget spent; retrying for as long as this replica holds the run",
				zap.Duration("closingBudget", a.timings.closingBudget), zap.Error(err))
		}
		if ctx.Err() != nil {
			r.log.Error("run not closed in Port: the agent is stopping; left for the next owner",
				zap.Duration("closingBudget", a.timings.closingBudget), zap.Error(err))
			return false
		}
		wait := backoff.Policy{Base: 200 * time.Millisecond, Max: 5 * time.Second}.Delay(attempt, 0)
		r.log.Warn("closing the run failed; retrying", zap.Duration("wait", wait), zap.Error(err))
		_ = backoff.Sleep(ctx, wait) // a done ctx is handled at the top of the next turn
	}
}

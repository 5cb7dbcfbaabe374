package agent

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/port-runner/port-runner/internal/backoff"
	"github.com/port-runner/port-runner/internal/portapi"
)

// lookupRetry paces the lookups of a run Port would not describe: like a closing's retries.
var lookupRetry = backoff.Policy{Base: 200 * time.Millisecond, Max: 5 * time.Second}

// lookupRun asks Port how it shows a run this replica has not taken, before deciding it.
// A failure retrying may fix (credentials refused, a malformed answer, an outage) is retried
// for as long as the run's partition stays with this replica and the agent runs: leaving the
// record for a redelivery would stall the partition's commit until a restart or rebalance.
// Past the closing budget it says so once and goes on. err is nil, or a permanent refusal,
// or the reason it stopped (the agent's stop or the handover: the next owner decides the run).
func (a *Agent) lookupRun(r *run) (portapi.Run, error) {
	bound := r.untilHandover(r.report)
	defer bound.end()
	ctx := bound.ctx
	tgt := a.target(r.msg)
	budget := time.Now().Add(a.timings.closingBudget)
	warned := false
	for attempt := 0; ; attempt++ {
		pr, err := tgt.GetRun(ctx, r.msg.ID)
		if err == nil || portapi.Permanent(err) {
			return pr, err
		}
		if ctx.Err() != nil {
			return pr, context.Cause(ctx)
		}
		wait := lookupRetry.Delay(attempt, 0)
		if !warned && time.Now().After(budget) {
			warned = true
			r.log.Error("cannot tell whether the run was closed for longer than the closing budget; retrying for as long as its partition stays here",
				zap.Duration("closingBudget", a.timings.closingBudget), zap.Error(err))
		} else {
			r.log.Warn("cannot tell whether the run was closed; retrying", zap.Duration("wait", wait), zap.Error(err))
		}
		if backoff.Sleep(ctx, wait) != nil {
			return pr, context.Cause(ctx)
		}
	}
}

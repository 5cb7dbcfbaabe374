package consumer

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
)

// onAssigned reads what earlier owners committed for the new partitions (offset and
// progress metadata) before fetching starts, so no record is handled without it. A
// partition whose progress cannot be read stays paused, and the commit loop keeps asking:
// handling its records blind could run again what an earlier owner ran.
func (c *Consumer) onAssigned(ctx context.Context, cl *kgo.Client, assignedParts map[string][]int32) {
	if len(assignedParts) > 0 {
		c.log.Info("partitions assigned", zap.Any("partitions", assignedParts))
		known, failed := c.fetchCommitted(ctx, cl, assignedParts, 3)
		c.priorMu.Lock()
		c.ledger.assign(known)
		for tp := range failed {
			c.unknownPrior[tp] = true
		}
		c.priorMu.Unlock()
		if len(failed) > 0 {
			cl.PauseFetchPartitions(partitionsOf(failed))
			c.log.Error("cannot read what earlier owners committed; partitions paused until it can be read",
				zap.Any("partitions", partitionsOf(failed)))
		}
		// A partition paused in an earlier assignment must not stay paused now.
		cl.ResumeFetchPartitions(partitionsOf(known))
	}
	c.joined.Store(true)
}

// retryUnknownPrior asks again for the progress of paused partitions and resumes those it
// gets, if they are still this member's.
func (c *Consumer) retryUnknownPrior(ctx context.Context) {
	c.priorMu.Lock()
	pending := map[topicPartition]assigned{}
	for tp := range c.unknownPrior {
		pending[tp] = assigned{}
	}
	c.priorMu.Unlock()
	if len(pending) == 0 {
		return
	}
	known, _ := c.fetchCommitted(ctx, c.cl, partitionsOf(pending), 1)
	resumed := map[topicPartition]assigned{}
	c.priorMu.Lock()
	for tp, a := range known {
		if c.unknownPrior[tp] {
			delete(c.unknownPrior, tp)
			resumed[tp] = a
		}
	}
	c.ledger.assign(resumed)
	c.priorMu.Unlock()
	if len(resumed) > 0 {
		c.cl.ResumeFetchPartitions(partitionsOf(resumed))
		c.log.Info("read earlier owners' progress; partitions resumed", zap.Any("partitions", partitionsOf(resumed)))
	}
}

// forgetUnknownPrior drops released partitions from those waiting for their progress.
func (c *Consumer) forgetUnknownPrior(parts map[string][]int32) {
	c.priorMu.Lock()
	defer c.priorMu.Unlock()
	for topic, ps := range parts {
		for _, p := range ps {
			delete(c.unknownPrior, topicPartition{topic, p})
		}
	}
}

func partitionsOf[V any](m map[topicPartition]V) map[string][]int32 {
	out := map[string][]int32{}
	for tp := range m {
		out[tp.topic] = append(out[tp.topic], tp.partition)
	}
	return out
}

// onRevoked hands partitions over only once no run of theirs can still be going here:
// runs not started yet do not start; those running get RevokeWait to end; what still runs
// then is cancelled (ErrNotOwned), and the revoke waits up to StopWait
// for it to be killed and closed in Port. Only then does it commit and release, so the new
// owner finds every run this member started either finished or closed in Port, and never
// starts one that is still running here. The group's rebalance timeout covers all of it.
func (c *Consumer) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	if len(revoked) == 0 {
		return // cooperative rebalances call this with nothing revoked
	}
	c.forgetUnknownPrior(revoked)
	c.ledger.revoking(revoked)
	c.log.Info("partitions revoked", zap.Any("partitions", revoked))
	wctx, cancelWait := context.WithTimeout(ctx, c.opts.RevokeWait)
	done := c.waitReleasable(wctx, revoked)
	cancelWait()
	if !done {
		c.log.Warn("runs of revoked partitions still going after the revoke wait; cancelling them",
			zap.Duration("waited", c.opts.RevokeWait), zap.Int("runs", c.holding(revoked)))
		c.ledger.stopRuns(revoked)
		sctx, cancelStop := context.WithTimeout(ctx, c.opts.StopWait)
		if !c.waitReleasable(sctx, revoked) {
			c.log.Error("cancelled runs of revoked partitions not closed in time; releasing them uncommitted",
				zap.Duration("waited", c.opts.StopWait), zap.Int("runs", c.holding(revoked)))
		}
		cancelStop()
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c.commit(cctx)
	c.ledger.release(revoked)
}

// waitReleasable blocks until parts may be released: the runs hold none of theirs that may
// still run or is being closed, and the ledger no record still being handled (polled and
// not yet a run, or whose handler has not returned: what the runs cannot know of). It
// reports whether they got there before ctx ended.
func (c *Consumer) waitReleasable(ctx context.Context, parts map[string][]int32) bool {
	for c.opts.Runs != nil {
		changed := c.opts.Runs.Changed() // before the count: no change between them is missed
		if c.holding(parts) == 0 {
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return false
		}
	}
	return c.ledger.waitFinished(ctx, parts)
}

// holding is how many runs of parts the runs hold (0 without Runs).
func (c *Consumer) holding(parts map[string][]int32) int {
	if c.opts.Runs == nil {
		return 0
	}
	n := 0
	for topic, ps := range parts {
		for _, p := range ps {
			n += c.opts.Runs.Holding(topic, p)
		}
	}
	return n
}

// onLost releases without committing: another member may already own these partitions, so
// their runs still going here are cancelled.
func (c *Consumer) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	c.log.Warn("partitions lost", zap.Any("partitions", lost))
	c.forgetUnknownPrior(lost)
	c.ledger.release(lost)
	c.joined.Store(false)
}

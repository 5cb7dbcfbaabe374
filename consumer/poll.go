package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
)

func (c *Consumer) poll(ctx, workCtx context.Context, handle Handler, handlers *sync.WaitGroup) error {
	for {
		n, err := c.opts.Slots.Reserve(ctx, min(c.opts.MaxPoll, maxPollRecords))
		if err != nil {
			return nil // ctx done: stop fetching
		}
		fetches := c.cl.PollRecords(ctx, n)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			c.cl.AllowRebalance()
			c.opts.Slots.Release(n)
			return nil
		}
		var fatal error
		var skipped []*kgo.ErrDecompressTooLarge
		fetches.EachError(func(topic string, partition int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			if b, ok := tooLarge(err); ok {
				skipped = append(skipped, b)
				return
			}
			c.log.Warn("fetch error", zap.String("topic", topic), zap.Int32("partition", partition), zap.Error(err))
			if isFatal(err) {
				fatal = fmt.Errorf("fetch %s/%d: %w", topic, partition, err)
			}
		})
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			c.ledger.setHighWater(p.Topic, p.Partition, p.HighWatermark)
		})
		var tickets []*Ticket
		fetches.EachRecord(func(r *kgo.Record) {
			prior, ok, pause := c.ledger.add(r)
			if ok {
				owned, handover := c.ledger.ownedCtx(r)
				tickets = append(tickets, &Ticket{Record: r, Prior: prior, c: c, owned: owned, Handover: handover})
			}
			if pause {
				c.syncPause(topicPartition{r.Topic, r.Partition})
			}
		})
		c.skipBatches(skipped) // after the records before them are in the ledger
		c.cl.AllowRebalance()
		c.opts.Slots.Release(n - len(tickets))
		if fatal != nil {
			c.opts.Slots.Release(len(tickets))
			c.opts.OnFatal(fatal)
			return fatal
		}
		for _, t := range tickets {
			handlers.Go(func() {
				defer c.opts.Slots.Release(1)
				// The handler's work ends with workCtx, or when the partition goes to another
				// member: from then on that member handles the run (as interrupted), so it
				// must not go on here.
				hctx, cancel := context.WithCancelCause(workCtx)
				defer cancel(nil)
				stop := context.AfterFunc(t.owned, func() { cancel(context.Cause(t.owned)) })
				defer stop()
				if handle(hctx, t) {
					if c.ledger.finish(t.Record) {
						c.syncPause(topicPartition{t.Record.Topic, t.Record.Partition})
					}
				} else {
					c.ledger.abandon(t.Record)
				}
			})
		}
	}
}

// syncPause pauses or resumes a partition's fetching as its ledger window says now. The
// state is read under pauseMu, so a pause and a resume decided at once never reach the
// client in the wrong order.
func (c *Consumer) syncPause(tp topicPartition) {
	c.pauseMu.Lock()
	defer c.pauseMu.Unlock()
	paused, owned := c.ledger.windowPaused(tp)
	if !owned {
		return
	}
	parts := map[string][]int32{tp.topic: {tp.partition}}
	if paused {
		c.cl.PauseFetchPartitions(parts)
		c.log.Info("partition paused: it holds as many unfinished runs, or finished offsets behind one, as its commit can carry",
			zap.String("topic", tp.topic), zap.Int32("partition", tp.partition))
	} else {
		c.cl.ResumeFetchPartitions(parts)
		c.log.Info("partition resumed", zap.String("topic", tp.topic), zap.Int32("partition", tp.partition))
	}
}

// commitLoop commits finished offsets periodically: often enough that a restart redoes
// little, rarely enough to cost the broker nothing.
func (c *Consumer) commitLoop(ctx context.Context) {
	t := time.NewTicker(c.opts.CommitEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.retryUnknownPrior(ctx)
			c.commit(ctx)
			c.opts.OnLags(c.ledger.lags())
		}
	}
}

func (c *Consumer) commit(ctx context.Context) {
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	snaps := c.ledger.toCommit()
	if len(snaps) == 0 {
		return
	}
	offsets := map[string]map[int32]kgo.EpochOffset{}
	for tp, s := range snaps {
		if offsets[tp.topic] == nil {
			offsets[tp.topic] = map[int32]kgo.EpochOffset{}
		}
		offsets[tp.topic][tp.partition] = s.offset
	}
	// The metadata field carries each partition's progress (see meta.go).
	withMeta := kgo.PreCommitFnContext(ctx, func(req *kmsg.OffsetCommitRequest) error {
		for i := range req.Topics {
			for j := range req.Topics[i].Partitions {
				p := &req.Topics[i].Partitions[j]
				if s, ok := snaps[topicPartition{c.topicName(req.Topics[i].Topic), p.Partition}]; ok {
					meta := s.meta
					p.Metadata = &meta
				}
			}
		}
		return nil
	})
	c.cl.CommitOffsetsSync(withMeta, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			// The request may or may not have been applied: forget what the broker has, so
			// the next commit goes out whatever it says (an unmarked start, say).
			c.log.Warn("commit offsets", zap.Error(err))
			for tp := range snaps {
				c.ledger.uncertain(tp)
			}
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				tp := topicPartition{c.topicName(t.Topic), p.Partition}
				if err := kerrOf(p.ErrorCode); err != nil {
					c.log.Warn("commit offset", zap.String("topic", tp.topic), zap.Int32("partition", p.Partition), zap.Error(err))
					continue
				}
				if s, ok := snaps[tp]; ok {
					c.ledger.committed(tp, s)
				}
			}
		}
	})
}

// topicName fills in the topic of a request or response that names it by ID only
// (OffsetCommit v10+): this consumer reads one topic.
func (c *Consumer) topicName(name string) string {
	if name == "" {
		return c.opts.Topic
	}
	return name
}

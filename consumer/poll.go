package consumer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/port-runner/port-runner/internal/clock"
	"github.com/port-runner/port-runner/internal/runmsg"
)

func (c *Consumer) poll(ctx, workCtx context.Context, handle Handler, handlers *sync.WaitGroup) error {
	run := newWorkers(handlers, workerIdle, func(t *Ticket) {
		defer func() {
			if !t.isParked() {
				c.opts.Slots.Release(1)
			}
		}()
		defer t.Release(false) // a ticket the handler did not end is left
		handle(workCtx, t)
	})
	defer run.stop()
	for {
		cl := c.client()
		if c.rejoinDue(cl) {
			if err := c.rejoinAs(ctx, cl); err != nil {
				c.opts.OnFatal(err)
				return err
			}
			if ctx.Err() != nil {
				return nil // stopping during the rejoin: no new member was made
			}
			continue
		}
		fetches, n, ok := c.fetch(ctx, cl)
		if !ok {
			if ctx.Err() != nil || !c.rejoinDue(cl) {
				return nil // stop fetching (or the client was closed)
			}
			continue
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
			if errors.Is(err, errFetchBudget) {
				c.log.Debug("partition left for the next fetch: this one decompressed to its budget",
					zap.String("topic", topic), zap.Int32("partition", partition))
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
			p, ok, pause := c.ledger.add(r)
			if ok {
				detach(r)
				tickets = append(tickets, c.newTicket(r, p))
			}
			if pause {
				c.syncPause(topicPartition{r.Topic, r.Partition})
			}
		})
		c.skipBatches(cl, skipped) // after the records before them are in the ledger
		cl.AllowRebalance()
		c.opts.Slots.Release(n - len(tickets))
		if fatal != nil {
			c.opts.Slots.Release(len(tickets))
			c.opts.OnFatal(fatal)
			return fatal
		}
		for _, t := range tickets {
			run.run(t)
		}
	}
}

// fetch polls cl for as many records as it reserves slots for. ok false: no records to
// handle, the poll cut short by ctx or by a rejoin request (a poll may wait for ever), and
// records of a membership being given up are not handled: its partitions are lost.
func (c *Consumer) fetch(ctx context.Context, cl *kgo.Client) (fetches kgo.Fetches, n int, ok bool) {
	pctx, endPoll := c.pollContext(ctx, cl)
	defer endPoll()
	n, err := c.opts.Slots.Reserve(pctx, min(c.opts.MaxPoll, maxPollRecords))
	if err != nil {
		return nil, 0, false
	}
	fetches = cl.PollRecords(pctx, n)
	if fetches.IsClientClosed() || pctx.Err() != nil {
		cl.AllowRebalance()
		c.opts.Slots.Release(n)
		return nil, 0, false
	}
	return fetches, n, true
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
		c.client().PauseFetchPartitions(parts)
		c.log.Info("partition paused: it holds as many unfinished runs, or finished offsets behind one, as its commit can carry",
			zap.String("topic", tp.topic), zap.Int32("partition", tp.partition))
	} else {
		c.client().ResumeFetchPartitions(parts)
		c.log.Info("partition resumed", zap.String("topic", tp.topic), zap.Int32("partition", tp.partition))
	}
}

// commitLoop commits finished offsets periodically: often enough that a restart redoes
// little, rarely enough to cost the broker nothing.
func (c *Consumer) commitLoop(ctx context.Context) {
	t := time.NewTicker(c.opts.CommitEvery)
	defer t.Stop()
	for tick := 1; ; tick++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if tick%othersEvery == 0 {
				c.refreshOthers(ctx)
			}
			c.retryUnknownPrior(ctx)
			c.ledger.forgetBefore(time.Now().Add(-c.opts.HistoryAge))
			c.commit(ctx, c.client(), nil)
			c.opts.OnLags(c.ledger.lags())
		}
	}
}

// othersEvery is how many commit ticks pass between two readings of the other partitions'
// history: a copy of a run on another partition is known once that partition's commit
// carrying the run has been read (README "Delivery").
const othersEvery = 5

// refreshOthers reads again what every partition committed, for the run ids handled there.
func (c *Consumer) refreshOthers(ctx context.Context) {
	if resps, err := c.fetchOffsets(ctx, c.client(), 1); err == nil {
		c.ledger.learnOthers(c.othersHistory(resps, nil))
	}
}

// commit sends every owned partition's snapshot that differs from what the broker has; those
// in handover lease this member's runs to it. It returns the partitions whose snapshot the
// broker did not accept (their commit failed, or its outcome is unknown). cl is the client
// of the membership the partitions are owned under.
func (c *Consumer) commit(ctx context.Context, cl *kgo.Client, handover map[topicPartition]Lease) (failed map[topicPartition]bool) {
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	return c.commitLocked(ctx, cl, handover)
}

// commitStart commits the ledger for start mark m, by deadline, unless a commit that ended
// while this one waited for its turn carried m already. Marks made while a commit is under
// way thus leave together in the next one, and a run's take waits for at most that one and
// its own, never for a queue of every other take's commits. The commit is not cut short by
// ctx: a cancelled commit may still reach the broker, and then nobody would know whether
// the mark is there. Its context is made only if it goes out: a mark that left in another
// take's commit needs none.
func (c *Consumer) commitStart(ctx context.Context, m startMark, deadline time.Time) {
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	if covered, _ := c.ledger.committedVersion(m); covered {
		return
	}
	cctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer cancel()
	c.commitLocked(cctx, c.client(), nil)
}

// commitLocked is commit; the caller holds commitMu.
func (c *Consumer) commitLocked(ctx context.Context, cl *kgo.Client, handover map[topicPartition]Lease) (failed map[topicPartition]bool) {
	snaps := c.ledger.toCommit(handover)
	failed = map[topicPartition]bool{}
	if len(snaps) == 0 {
		return failed
	}
	offsets := map[string]map[int32]kgo.EpochOffset{}
	for tp, s := range snaps {
		if offsets[tp.topic] == nil {
			offsets[tp.topic] = map[int32]kgo.EpochOffset{}
		}
		offsets[tp.topic][tp.partition] = s.offset
		failed[tp] = true
	}
	// The metadata field carries each partition's progress (see meta.go).
	var member string
	withMeta := kgo.PreCommitFnContext(ctx, func(req *kmsg.OffsetCommitRequest) error {
		member = req.MemberID
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
	sent := clock.Now()
	cl.CommitOffsetsSync(withMeta, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		c.committed(snaps, resp, err, failed)
	})
	if len(failed) == 0 && member != "" {
		c.members.confirm(member, sent) // the broker took a commit of this member, as a member
	}
	return failed
}

// committed records a commit's answer in the ledger and in failed.
func (c *Consumer) committed(snaps map[topicPartition]snapshot, resp *kmsg.OffsetCommitResponse, err error, failed map[topicPartition]bool) {
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
				delete(failed, tp)
			}
		}
	}
}

// topicName fills in the topic of a request or response that names it by ID only
// (OffsetCommit v10+): this consumer reads one topic.
func (c *Consumer) topicName(name string) string {
	if name == "" {
		return c.opts.Topic
	}
	return name
}

// detach gives r a value of its own and drops its key and headers, which nothing reads: as
// fetched, they are all slices of the whole fetch, or of its batch decompressed (up to
// maxDecompressBatchBytes), and a run holds its record for as long as it runs.
func detach(r *kgo.Record) {
	if len(r.Value) > runmsg.DefaultMaxBytes {
		return // refused by its handler at once, as no run message is bigger: a copy would double it
	}
	r.Key, r.Headers = nil, nil
	r.Value = bytes.Clone(r.Value)
}

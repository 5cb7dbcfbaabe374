package consumer

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/port-runner/port-runner/internal/backoff"
)

// fetchCommitted reads the group's committed offsets and progress for parts. known holds
// the partitions it could read (offset -1: nothing committed yet); failed the others.
func (c *Consumer) fetchCommitted(ctx context.Context, cl *kgo.Client, parts map[string][]int32, attempts int) (known map[topicPartition]assigned, failed map[topicPartition]bool) {
	known, failed = map[topicPartition]assigned{}, map[topicPartition]bool{}
	resps, err := c.fetchOffsets(ctx, cl, attempts)
	if err == nil {
		c.ledger.learnOthers(c.othersHistory(resps, parts))
	}
	ends := &endOffsets{cl: cl, topic: c.opts.Topic, log: c.log}
	for topic, ps := range parts {
		for _, p := range ps {
			tp := topicPartition{topic, p}
			if err != nil {
				failed[tp] = true
				continue
			}
			if a, ok := c.assignedFrom(ctx, tp, resps, ends); ok {
				known[tp] = a
			} else {
				failed[tp] = true
			}
		}
	}
	return known, failed
}

// othersHistory is the history every partition but parts committed: runs handled there.
func (c *Consumer) othersHistory(resps kadm.OffsetResponses, parts map[string][]int32) history {
	h := newHistory()
	mine := map[topicPartition]bool{}
	for topic, ps := range parts {
		for _, p := range ps {
			mine[topicPartition{topic, p}] = true
		}
	}
	resps.Each(func(r kadm.OffsetResponse) {
		if r.Err != nil || r.Topic != c.opts.Topic || mine[topicPartition{r.Topic, r.Partition}] {
			return
		}
		if p, ok, err := decodeProgress(r.At, r.Metadata); ok && err == nil {
			for id, at := range p.history.runs {
				h.runs[id] = at // presence is all that is asked of others' history
			}
		}
	})
	return h
}

// fetchOffsets reads the group's committed offsets, trying up to attempts times.
func (c *Consumer) fetchOffsets(ctx context.Context, cl *kgo.Client, attempts int) (kadm.OffsetResponses, error) {
	var resps kadm.OffsetResponses
	var err error
	for attempt := 0; attempt < attempts; attempt++ {
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resps, err = fetchGroupOffsets(fctx, cl, c.opts.Group, c.opts.Topic)
		cancel()
		if err == nil || ctx.Err() != nil {
			break
		}
		c.log.Warn("fetch committed offsets", zap.Int("attempt", attempt+1), zap.Error(err))
		if attempt+1 < attempts && backoff.Sleep(ctx, backoff.Policy{Base: 100 * time.Millisecond, Max: time.Second}.Delay(attempt, 0)) != nil {
			break
		}
	}
	return resps, err
}

// fetchGroupOffsets is kadm's FetchOffsets, failing where the answer does not carry group.
// From OffsetFetch v8 an answer lists the groups it is for, and franz-go's request sharding
// takes one without ours for ours with nothing committed (empty, no error; a kmsg request
// for the whole group cannot tell either): every partition would then start
// anew, from "latest" skipping the runs committed but not handled (README "Delivery"). An
// empty answer is checked by naming every partition of topic, which a group answers each
// of even when nothing is committed there: one missing, in error or committed says the
// first answer cannot be taken for nothing committed. So until the group's first commit
// every read costs three requests (assignments and the lag's refresh: rare enough).
func fetchGroupOffsets(ctx context.Context, cl *kgo.Client, group, topic string) (kadm.OffsetResponses, error) {
	adm := kadm.NewClient(cl)
	resps, err := adm.FetchOffsets(ctx, group)
	if err != nil || len(resps) > 0 {
		return resps, err
	}
	fail := func(format string, args ...any) (kadm.OffsetResponses, error) {
		return nil, fmt.Errorf("read committed offsets of group %s: "+format, append([]any{group}, args...)...)
	}
	topics, err := adm.ListTopics(ctx, topic)
	if err == nil {
		err = topics.Error()
	}
	if err != nil {
		return fail("the partitions of %s: %w", topic, err)
	}
	parts := topics[topic].Partitions.Numbers()
	if len(parts) == 0 {
		return fail("%s has no partitions", topic)
	}
	req := kmsg.NewPtrOffsetFetchRequest()
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = group
	rt := kmsg.NewOffsetFetchRequestGroupTopic()
	rt.Topic, rt.Partitions = topic, parts
	rg.Topics = append(rg.Topics, rt)
	req.Groups = append(req.Groups, rg)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fail("%w", err)
	}
	for _, g := range resp.Groups {
		if g.Group != group {
			continue
		}
		// A group with an error of its own answers no topics: the error is the read's.
		if err := kerr.ErrorForCode(g.ErrorCode); err != nil {
			return fail("%w", err)
		}
		answered := 0
		for _, t := range g.Topics { // topic's alone: its name may be left to its id (v10)
			for _, p := range t.Partitions {
				// The partition's own error (the topic not authorized, an offset under a
				// transaction) leaves the commits unread: not "nothing committed".
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return fail("at %s/%d: %w", topic, p.Partition, err)
				}
				// A commit says the read of the whole group, which listed none, was an
				// answer without the group after all (this one carries it).
				if p.Offset >= 0 {
					return fail("the whole group's read listed nothing, yet %s/%d is committed", topic, p.Partition)
				}
				answered++
			}
		}
		if answered == len(parts) {
			return resps, nil
		}
	}
	return fail("the answer does not carry the group")
}

// assignedFrom is what the group committed for tp, as the ledger takes it; false when that
// cannot be told (the partition then waits, paused).
func (c *Consumer) assignedFrom(ctx context.Context, tp topicPartition, resps kadm.OffsetResponses, ends *endOffsets) (assigned, bool) {
	topic, p := tp.topic, tp.partition
	r, ok := resps.Lookup(topic, p)
	if ok && r.Err != nil {
		c.log.Warn("fetch committed offset", zap.String("topic", topic), zap.Int32("partition", p), zap.Error(r.Err))
		return assigned{}, false
	}
	if !ok || r.At < 0 {
		// Nothing committed: a new group. From the latest offset nothing old is
		// read; from the earliest, what is already there is unknown.
		end, ok := ends.of(ctx, topic, p)
		if !ok {
			return assigned{}, false
		}
		return assigned{offset: -1, unknownBelow: end, fromEnd: c.opts.StartOffset != "earliest"}, true
	}
	prog, ours, derr := decodeProgress(r.At, r.Metadata)
	a := assigned{offset: r.At, meta: r.Metadata, progress: prog}
	if derr != nil {
		c.log.Warn("unreadable progress metadata: records up to the end offset are checked in Port",
			zap.String("topic", topic), zap.Int32("partition", p), zap.Error(derr))
		end, ok := ends.of(ctx, topic, p)
		if !ok {
			return assigned{}, false
		}
		a.progress, a.unknownBelow = newProgress(), end
	}
	if ours && !prog.empty() && derr == nil {
		c.log.Info("earlier owner's progress", zap.String("topic", topic), zap.Int32("partition", p),
			zap.Int64("committed", r.At), zap.Int("started", len(prog.started)), zap.Int("finished", len(prog.finished)))
	}
	return a, true
}

// endOffsets are the topic's end offsets, listed once, when first needed. Where nothing
// trustworthy was committed, the records already in the partition may have been handled
// under another group or by an agent whose marks are unreadable: they come as
// PriorUnknown, up to the end offset now.
type endOffsets struct {
	cl     *kgo.Client
	topic  string
	log    *zap.Logger
	listed kadm.ListedOffsets
}

func (e *endOffsets) list(ctx context.Context) (kadm.ListedOffsets, error) {
	if e.listed != nil {
		return e.listed, nil
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var err error
	e.listed, err = kadm.NewClient(e.cl).ListEndOffsets(lctx, e.topic)
	return e.listed, err
}

// of is the end offset of the topic's partition p; false when it cannot be listed.
func (e *endOffsets) of(ctx context.Context, topic string, p int32) (int64, bool) {
	ends, err := e.list(ctx)
	if err != nil {
		e.log.Warn("list end offsets", zap.String("topic", topic), zap.Error(err))
		return 0, false
	}
	lo, ok := ends.Lookup(topic, p)
	if !ok || lo.Err != nil {
		return 0, false
	}
	return lo.Offset, true
}

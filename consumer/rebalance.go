package consumer

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
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
		startAtListedEnds(cl, known)
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

// startAtListedEnds starts the partitions nothing was committed for that start at their end
// (startOffset latest) at the end listed when reading what earlier owners committed, not at
// the end franz-go would look up once onAssigned returns: a run that reached the partition
// in between is read, not skipped (SetOffsets, which franz-go applies once its own lookup
// returns). The partition's first commit says that end (ledger.assign), and so does every
// take's, so that its next owner starts there too.
func startAtListedEnds(cl *kgo.Client, known map[topicPartition]assigned) {
	set := map[string]map[int32]kgo.EpochOffset{}
	for tp, a := range known {
		if a.fromEnd {
			if set[tp.topic] == nil {
				set[tp.topic] = map[int32]kgo.EpochOffset{}
			}
			set[tp.topic][tp.partition] = kgo.EpochOffset{Epoch: -1, Offset: a.unknownBelow}
		}
	}
	if len(set) > 0 {
		cl.SetOffsets(set)
	}
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
	cl := c.client()
	known, _ := c.fetchCommitted(ctx, cl, partitionsOf(pending), 1)
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
		cl.ResumeFetchPartitions(partitionsOf(resumed))
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

// onRevoked hands partitions over at once (README "Delivery"): runs of theirs not taken yet
// are not taken here; the commit leases every run this member took and has not finished to
// it (it finishes them, closes them in Port, and their new owner keeps its hands off); then
// the partitions are released. If that commit fails, the runs the group holds leased to this
// member all the same go on (handOver); the others are not leased: they stop here
// (ErrNotOwned) and the next owner decides them after the fence.
func (c *Consumer) onRevoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	if len(revoked) == 0 {
		return // cooperative rebalances call this with nothing revoked
	}
	c.forgetUnknownPrior(revoked)
	c.ledger.revoking(revoked)
	holder, _ := cl.GroupMetadata()
	lease := Lease{Holder: holder, Bound: c.leaseBound()}
	var h *handover
	var unread map[topicPartition]bool
	if lease.Holder != "" {
		h, unread = c.handOver(ctx, cl, revoked, lease)
	}
	c.lose(c.ledger.release(revoked), h, false)
	c.logHandover(revoked, h, unread)
}

// onLost releases without committing: another member may already own these partitions.
// Their runs here stop and are never closed here: the new owner decides them once the fence
// has passed (their commands are dead by then). The runs this member holds under leases
// after handovers rest on its member id being listed in the group (members.held). Under
// classic a refused heartbeat (ILLEGAL_GENERATION) comes from a coordinator that still lists
// the member, and an id it dropped never comes back (the member rejoins under a new one), so
// they go on. Under KIP-848 a broker without KAFKA-19233 refuses a fenced member's rejoin
// until its session ends, then takes it back under the same id: the holders waiting for its
// leases may have seen it go while it did not see itself go, so they stop here, and the
// member leaves under that id and joins under a new one, so that their waiters see it go and
// decide them (README "Delivery").
func (c *Consumer) onLost(_ context.Context, cl *kgo.Client, lost map[string][]int32) {
	c.log.Warn("partitions lost", zap.Any("partitions", lost))
	c.forgetUnknownPrior(lost)
	kip848 := c.opts.GroupProtocol == "consumer"
	if c.lose(c.ledger.release(lost), nil, kip848) > 0 {
		c.requestRejoin(cl) // from the poll loop: a callback cannot leave the group
	}
	c.joined.Store(false)
}

// describe lists the group's members as its coordinator has them now. A group moving
// between protocols (a rolling update that changes groupProtocol) is described by the API
// of the protocol it has now: Kafka answers GROUP_ID_NOT_FOUND to the other one, and a
// replica that could not describe its group would stop its runs at the fence.
func (c *Consumer) describe(ctx context.Context) ([]string, error) {
	adm := kadm.NewClient(c.client())
	consumerGroup := c.opts.GroupProtocol == "consumer"
	ids, err := describeMembers(ctx, adm, c.opts.Group, consumerGroup)
	if errors.Is(err, kerr.GroupIDNotFound) {
		ids, err = describeMembers(ctx, adm, c.opts.Group, !consumerGroup)
	}
	return ids, err
}

// describeMembers lists the member ids of group, as a consumer group (KIP-848) or as a
// classic one.
func describeMembers(ctx context.Context, adm *kadm.Client, group string, consumerGroup bool) ([]string, error) {
	var ids []string
	if consumerGroup {
		gs, err := adm.DescribeConsumerGroups(ctx, group)
		if err != nil {
			return nil, err
		}
		g := gs[group]
		if g.Err != nil {
			return nil, g.Err
		}
		for _, m := range g.Members {
			ids = append(ids, m.MemberID)
		}
		return ids, nil
	}
	gs, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return nil, err
	}
	g := gs[group]
	if g.Err != nil {
		return nil, g.Err
	}
	if g.State == "Dead" {
		// Older DescribeGroups versions say so, with no error, of a group that is not classic.
		return nil, kerr.GroupIDNotFound
	}
	for _, m := range g.Members {
		ids = append(ids, m.MemberID)
	}
	return ids, nil
}

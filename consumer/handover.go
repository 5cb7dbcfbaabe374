package consumer

import (
	"context"
	"maps"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/port-runner/port-runner/internal/backoff"
)

// handover is what a revoke handed over, as the broker has it: every run this member took
// on the partitions in committed (their handover's commit was answered), and on the others
// the offsets in readBack (the commit answered failed, but what the group holds leases them
// to this member). A nil *handover hands nothing over.
type handover struct {
	committed map[topicPartition]bool
	readBack  map[topicPartition]map[int64]bool
}

// keeps says whether the run of rec, taken here, is leased to this member in what its
// partition's next owner reads.
func (h *handover) keeps(rec *kgo.Record) bool {
	if h == nil {
		return false
	}
	tp := topicPartition{rec.Topic, rec.Partition}
	return h.committed[tp] || h.readBack[tp][rec.Offset]
}

// isLeased says whether a handover leased the ticket's run to this member.
func (t *Ticket) isLeased() bool {
	t.c.runsMu.Lock()
	defer t.c.runsMu.Unlock()
	return t.leased
}

// isDecided says whether the ticket's release was followed by what it leaves the ticket
// (lose): lost, or leased to this member. A revoke releases a partition before its
// handover's read-back leases its runs: a Take that sees the partition gone in between
// waits for that (the group may lease the run to this member, and its next owner then
// waits for it).
func (t *Ticket) isDecided() bool {
	t.c.runsMu.Lock()
	defer t.c.runsMu.Unlock()
	return t.lost != nil || t.leased || t.released
}

// handOver commits the revoked partitions' leases, trying a few times within the rebalance.
// Where every try failed, the broker may have applied one all the same (answered with an
// error after the write, or its answer lost), and the new owner then waits for the runs it
// leases here: what the group holds is read back, and the runs it leases to this member are
// handed over as if the commit had been answered (README "Delivery"). unread are the
// partitions where that read failed too: their runs are taken as not leased.
func (c *Consumer) handOver(ctx context.Context, cl *kgo.Client, revoked map[string][]int32, lease Lease) (h *handover, unread map[topicPartition]bool) {
	var failed map[topicPartition]bool
	want := map[topicPartition]Lease{}
	for topic, ps := range revoked {
		for _, p := range ps {
			want[topicPartition{topic, p}] = lease
		}
	}
	for attempt := 0; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		failed = c.commit(cctx, cl, want)
		cancel()
		// The commit carries the partitions that stay too: only the revoked ones' say
		// whether the handover went through.
		maps.DeleteFunc(failed, func(tp topicPartition, _ bool) bool { _, handed := want[tp]; return !handed })
		if len(failed) == 0 || attempt == 2 || backoff.Sleep(ctx, backoff.Policy{Base: 200 * time.Millisecond, Max: time.Second}.Delay(attempt, 0)) != nil {
			break
		}
	}
	h = &handover{committed: map[topicPartition]bool{}, readBack: map[topicPartition]map[int64]bool{}}
	for tp := range want {
		if !failed[tp] {
			h.committed[tp] = true
		}
	}
	if len(failed) == 0 {
		return h, nil
	}
	h.readBack, unread = c.leasedTo(ctx, cl, failed, lease.Holder)
	return h, unread
}

// leasedTo reads what the group holds for parts and returns, per partition, the offsets
// whose runs it leases to holder: whoever committed it last (this member's handover, or
// already the partition's next owner, whose commits carry the leases it read), that is
// what the next owner goes by. unread are the partitions it could not be read for.
func (c *Consumer) leasedTo(ctx context.Context, cl *kgo.Client, parts map[topicPartition]bool, holder string) (leased map[topicPartition]map[int64]bool, unread map[topicPartition]bool) {
	leased = map[topicPartition]map[int64]bool{}
	// Within 10s, as one try of the commit: the revoke must end within the rebalance timeout.
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resps, err := c.fetchOffsets(rctx, cl, 2)
	if err != nil {
		// fetchOffsets says nothing of a read cut short by its deadline.
		c.log.Warn("read back what the group holds for a handover", zap.Any("partitions", partitionsOf(parts)), zap.Error(err))
		return leased, parts
	}
	unread = map[topicPartition]bool{}
	for tp := range parts {
		r, found := resps.Lookup(tp.topic, tp.partition)
		switch {
		case found && r.Err != nil:
			c.log.Warn("read back a handover's partition", zap.String("topic", tp.topic), zap.Int32("partition", tp.partition), zap.Error(r.Err))
			unread[tp] = true
			continue
		case !found || r.At < 0:
			continue // nothing committed: nothing leased
		}
		// Unreadable metadata leases nothing: the next owner asks Port about its runs.
		prog, _, derr := decodeProgress(r.At, r.Metadata)
		if derr != nil {
			continue
		}
		for off, l := range prog.leases {
			if l.Holder == holder {
				if leased[tp] == nil {
					leased[tp] = map[int64]bool{}
				}
				leased[tp][off] = true
			}
		}
	}
	return leased, unread
}

// logHandover says what a revoke handed over: unread are the partitions whose handover
// nothing confirmed.
func (c *Consumer) logHandover(revoked map[string][]int32, h *handover, unread map[topicPartition]bool) {
	if h == nil {
		c.log.Error("partitions revoked outside the group (no member id): their runs here stop, and their next owner decides them",
			zap.Any("partitions", revoked))
		return
	}
	if len(h.committed) > 0 {
		c.log.Info("partitions handed over; their runs here go on under this member's leases", zap.Any("partitions", partitionsOf(h.committed)))
	}
	leased, none := map[topicPartition]bool{}, map[topicPartition]bool{}
	n := 0 // runs leased as read back
	for topic, ps := range revoked {
		for _, p := range ps {
			tp := topicPartition{topic, p}
			switch {
			case h.committed[tp] || unread[tp]:
			case len(h.readBack[tp]) > 0:
				leased[tp], n = true, n+len(h.readBack[tp])
			default:
				none[tp] = true
			}
		}
	}
	if len(leased) > 0 {
		c.log.Warn("partitions handed over though their commit was answered failed: the runs the group leases to this member, as read back, go on here under their leases; the others stop, and their next owner decides them",
			zap.Any("partitions", partitionsOf(leased)), zap.Int("leased runs", n))
	}
	if len(none) > 0 {
		c.log.Error("partitions revoked, but their handover could not be committed: their runs here stop, and their next owner decides them",
			zap.Any("partitions", partitionsOf(none)))
	}
	if len(unread) > 0 {
		c.log.Error("partitions revoked; neither their handover's commit nor a read of what the group holds went through: their runs here stop",
			zap.Any("partitions", partitionsOf(unread)),
			zap.String("next owner", "decides them, or, if the broker applied the commit, waits for this member to leave the group (README \"Delivery\")"))
	}
}

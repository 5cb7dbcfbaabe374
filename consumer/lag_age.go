package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
)

// readAges returns, per owned partition, the age of its oldest unstarted message; a message
// this replica has not fetched yet is read from the partition's leader (one record).
func (c *LagCollector) readAges(ctx context.Context, owned map[int32]Unstarted, ends map[int32]int64) map[int32]float64 {
	now := c.opts.Now()
	ages := map[int32]float64{}
	var need []int32
	for p, u := range owned {
		end, ok := ends[p]
		switch {
		case !ok:
			continue
		case u.Offset < 0 || u.Offset >= end:
			ages[p] = 0 // nothing waits
		case !u.Timestamp.IsZero():
			ages[p] = max(now.Sub(u.Timestamp).Seconds(), 0)
		default:
			c.mu.Lock()
			s, ok := c.stamps[p]
			c.mu.Unlock()
			if ok && s.offset == u.Offset {
				ages[p] = max(now.Sub(s.at).Seconds(), 0)
				continue
			}
			need = append(need, p)
		}
	}
	if len(need) == 0 {
		return ages
	}
	got, err := c.timestamps(ctx, need, owned)
	if err != nil {
		c.opts.Logger.Debug("consumer lag: cannot read the oldest waiting message", zap.Error(err))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for p, at := range got {
		c.stamps[p] = lagStamp{offset: owned[p].Offset, at: at}
		ages[p] = max(now.Sub(at).Seconds(), 0)
	}
	return ages
}

// timestamps reads the first record at or after each partition's unstarted offset, with one
// fetch request per leader.
func (c *LagCollector) timestamps(ctx context.Context, parts []int32, owned map[int32]Unstarted) (map[int32]time.Time, error) {
	meta, err := c.adm.Metadata(ctx, c.opts.Topic)
	if err != nil {
		return nil, fmt.Errorf("metadata of %s: %w", c.opts.Topic, err)
	}
	td, ok := meta.Topics[c.opts.Topic]
	if !ok || td.Err != nil {
		return nil, fmt.Errorf("metadata of %s: %v", c.opts.Topic, td.Err)
	}
	byLeader := map[int32]*kmsg.FetchRequest{}
	for _, p := range parts {
		pd, ok := td.Partitions[p]
		if !ok || pd.Leader < 0 {
			continue
		}
		req := byLeader[pd.Leader]
		if req == nil {
			req = kmsg.NewPtrFetchRequest()
			req.ReplicaID = -1
			req.MaxWaitMillis = 0
			req.MinBytes = 1
			req.MaxBytes = 1 << 20
			req.SessionEpoch = -1 // no fetch session: a one-off read
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = c.opts.Topic
			rt.TopicID = td.ID
			req.Topics = append(req.Topics, rt)
			byLeader[pd.Leader] = req
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = p
		rp.FetchOffset = owned[p].Offset
		rp.CurrentLeaderEpoch = -1
		rp.LogStartOffset = -1
		// Small: only the first record is read (a bigger first batch still comes, KIP-74).
		rp.PartitionMaxBytes = 16 << 10
		req.Topics[0].Partitions = append(req.Topics[0].Partitions, rp)
	}
	out := map[int32]time.Time{}
	var errs error
	for leader, req := range byLeader {
		resp, err := req.RequestWith(ctx, c.opts.Client.Broker(int(leader)))
		if err != nil {
			errs = errors.Join(errs, fmt.Errorf("fetch from broker %d: %w", leader, err))
			continue
		}
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				rp := &resp.Topics[i].Partitions[j]
				off := owned[rp.Partition].Offset
				at, ok, err := c.firstStamp(rp, off)
				if err != nil {
					errs = errors.Join(errs, fmt.Errorf("fetch %s/%d@%d: %w", c.opts.Topic, rp.Partition, off, err))
				} else if ok {
					out[rp.Partition] = at
				}
			}
		}
	}
	return out, errs
}

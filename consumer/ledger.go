package consumer

import (
	"context"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ledger tracks, per owned partition, the records handed to the pool and which of them are
// finished. The committable offset is the oldest unfinished one: work finishes out of order,
// but a commit never passes a run that is still going.
type ledger struct {
	mu      sync.Mutex
	parts   map[topicPartition]*partitionLedger
	changed chan struct{} // closed and replaced whenever a record finishes
}

type topicPartition struct {
	topic     string
	partition int32
}

type partitionLedger struct {
	inflight []*entry // in offset order: records arrive in order per partition
	// commit is the offset (and leader epoch of the record before it) that a commit stores:
	// everything before it is finished.
	commit    kgo.EpochOffset
	committed kgo.EpochOffset // what the broker has
	highWater int64           // from the last fetch, for lag
}

type entry struct {
	rec  *kgo.Record
	done bool
}

func newLedger() *ledger {
	return &ledger{parts: map[topicPartition]*partitionLedger{}, changed: make(chan struct{})}
}

// assign starts tracking partitions this member now owns.
func (l *ledger) assign(assigned map[string][]int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for topic, parts := range assigned {
		for _, p := range parts {
			tp := topicPartition{topic, p}
			if _, ok := l.parts[tp]; !ok {
				l.parts[tp] = &partitionLedger{commit: kgo.EpochOffset{Epoch: -1, Offset: -1}, committed: kgo.EpochOffset{Epoch: -1, Offset: -1}}
			}
		}
	}
}

// release stops tracking partitions: their later completions are dropped, never committed,
// because franz-go would commit offsets for partitions another member now owns.
func (l *ledger) release(revoked map[string][]int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for topic, parts := range revoked {
		for _, p := range parts {
			delete(l.parts, topicPartition{topic, p})
		}
	}
}

// add registers a polled record; it reports false when the partition is not owned (the
// record came from a fetch that raced a revoke) so the caller must not run it.
func (l *ledger) add(rec *kgo.Record) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	pl, ok := l.parts[topicPartition{rec.Topic, rec.Partition}]
	if !ok {
		return false
	}
	pl.inflight = append(pl.inflight, &entry{rec: rec})
	return true
}

// finish marks a record's work as done and advances its partition's commit past every
// finished record at the front.
func (l *ledger) finish(rec *kgo.Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	close(l.changed)
	l.changed = make(chan struct{})
	pl, ok := l.parts[topicPartition{rec.Topic, rec.Partition}]
	if !ok {
		return
	}
	for _, e := range pl.inflight {
		if e.rec == rec {
			e.done = true
			break
		}
	}
	for len(pl.inflight) > 0 && pl.inflight[0].done {
		r := pl.inflight[0].rec
		pl.inflight[0] = nil
		pl.inflight = pl.inflight[1:]
		pl.commit = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}
	}
}

// toCommit returns the committable offsets that moved since the last commit, for owned
// partitions only.
func (l *ledger) toCommit() map[string]map[int32]kgo.EpochOffset {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]map[int32]kgo.EpochOffset{}
	for tp, pl := range l.parts {
		if pl.commit.Offset < 0 || pl.commit == pl.committed {
			continue
		}
		if out[tp.topic] == nil {
			out[tp.topic] = map[int32]kgo.EpochOffset{}
		}
		out[tp.topic][tp.partition] = pl.commit
	}
	return out
}

// committed records what the broker accepted.
func (l *ledger) committed(topic string, partition int32, eo kgo.EpochOffset) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if pl, ok := l.parts[topicPartition{topic, partition}]; ok && eo.Offset > pl.committed.Offset {
		pl.committed = eo
	}
}

// setHighWater notes a partition's high watermark from a fetch.
func (l *ledger) setHighWater(topic string, partition int32, hw int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if pl, ok := l.parts[topicPartition{topic, partition}]; ok {
		pl.highWater = hw
	}
}

// lags returns, per owned partition, how many messages are not yet committed.
func (l *ledger) lags() map[int32]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[int32]int64{}
	for tp, pl := range l.parts {
		if pl.commit.Offset < 0 {
			continue // nothing consumed yet: the lag is unknown, not the whole log
		}
		lag := pl.highWater - pl.commit.Offset
		if lag < 0 {
			lag = 0
		}
		out[tp.partition] = lag
	}
	return out
}

// inflight counts registered, unfinished records (for tests and shutdown logs).
func (l *ledger) inflight() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, pl := range l.parts {
		for _, e := range pl.inflight {
			if !e.done {
				n++
			}
		}
	}
	return n
}

// waitFinished blocks until the given partitions have no unfinished records, or ctx ends;
// it reports whether they all finished.
func (l *ledger) waitFinished(ctx context.Context, parts map[string][]int32) bool {
	for {
		l.mu.Lock()
		busy := false
		for topic, ps := range parts {
			for _, p := range ps {
				if pl, ok := l.parts[topicPartition{topic, p}]; ok {
					for _, e := range pl.inflight {
						busy = busy || !e.done
					}
				}
			}
		}
		changed := l.changed
		l.mu.Unlock()
		if !busy {
			return true
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return false
		}
	}
}

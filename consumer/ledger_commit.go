package consumer

import "github.com/twmb/franz-go/pkg/kgo"

// snapshot is one partition's commit: offset plus progress metadata.
type snapshot struct {
	offset  kgo.EpochOffset
	meta    string
	version uint64
}

// snapshot is the commit this partition wants now: offset = oldest unfinished record (or
// past the last finished one), metadata = started and finished offsets at or above it,
// including what earlier owners left for offsets not polled yet. ok is false before this
// member has polled anything of the partition: the earlier commit stands as it is.
func (pl *partitionLedger) snapshot() (snapshot, bool) {
	base, ok := pl.base()
	if !ok {
		return snapshot{}, false
	}
	p := progress{started: map[int64]bool{}, finished: map[int64]bool{}}
	for _, e := range pl.inflight {
		switch {
		case e.done:
			p.finished[e.offset] = true
		case e.started:
			p.started[e.offset] = true
		}
	}
	for off := range pl.prior.started {
		if off > pl.lastSeen {
			p.started[off] = true
		}
	}
	for off := range pl.prior.finished {
		if off > pl.lastSeen {
			p.finished[off] = true
		}
	}
	return snapshot{offset: base, meta: encodeProgress(base.Offset, p), version: pl.version}, true
}

// base is the committable offset: the oldest unfinished record, or past the last finished
// one; false before anything was polled.
func (pl *partitionLedger) base() (kgo.EpochOffset, bool) {
	switch {
	case len(pl.inflight) > 0:
		e := pl.inflight[0]
		return kgo.EpochOffset{Epoch: e.epoch, Offset: e.offset}, true
	case pl.hasDone:
		return kgo.EpochOffset{Epoch: pl.lastDone.epoch, Offset: pl.lastDone.offset + 1}, true
	}
	return kgo.EpochOffset{}, false
}

// toCommit returns the snapshots of owned partitions that differ from what is committed.
func (l *ledger) toCommit() map[topicPartition]snapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[topicPartition]snapshot{}
	for tp, pl := range l.parts {
		s, ok := pl.snapshot()
		if !ok {
			continue
		}
		if s.offset.Offset == pl.committed.offset.Offset && s.meta == pl.committed.meta {
			pl.committed.version = s.version // nothing new to say: the broker has it already
			continue
		}
		out[tp] = s
	}
	return out
}

// committed records what the broker accepted.
func (l *ledger) committed(tp topicPartition, s snapshot) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if pl, ok := l.parts[tp]; ok && s.version >= pl.committed.version {
		pl.committed = s
	}
}

// uncertain forgets what the broker has for a partition after a commit whose outcome is
// unknown; the version stays, so no start counts as committed because of it.
func (l *ledger) uncertain(tp topicPartition) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if pl, ok := l.parts[tp]; ok {
		pl.committed.offset = kgo.EpochOffset{Epoch: -1, Offset: unknownOffset}
		pl.committed.meta = ""
	}
}

// unknownOffset stands for "whatever the broker has": no snapshot equals it.
const unknownOffset = -2

// committedVersion says whether the partition's commit includes the start m. A partition
// released and assigned again since is a new ownership whose versions count anew: the start
// belonged to the old one, so it is not owned.
func (l *ledger) committedVersion(tp topicPartition, m startMark) (covered, owned bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	pl, ok := l.parts[tp]
	if !ok || pl != m.pl {
		return false, false
	}
	return pl.committed.version >= m.version, true
}

package consumer

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"
)

// snapshot is one partition's commit: offset plus progress metadata.
type snapshot struct {
	offset  kgo.EpochOffset
	meta    string
	version uint64
}

// snapshot is the commit this partition wants now: offset = oldest unfinished record (or
// past the last finished one), metadata = started and finished offsets at or above it,
// including what earlier owners left for offsets not polled yet, and the history. At a
// handover (lease set) the runs this member took and has not finished are leased to it. ok
// is false before this member has polled anything of the partition: the earlier commit
// stands as it is.
func (pl *partitionLedger) snapshot(handover *Lease) (snapshot, bool) {
	base, ok := pl.base()
	if !ok {
		return snapshot{}, false
	}
	meta := pl.meta.encode(base.Offset, pl.marksNow(handover, true), pl.history)
	pl.marks.trim()
	pl.meta.trim()
	return snapshot{offset: base, meta: meta, version: pl.version}, true
}

// fits says whether the partition's commit would still say every start and lease within
// Kafka's metadata limit if every run this member took were leased to handover.
func (pl *partitionLedger) fits(handover Lease) bool {
	base, ok := pl.base()
	if !ok {
		return true
	}
	fits := pl.meta.coreFits(base.Offset, pl.marksNow(&handover, false).started)
	pl.marks.trim()
	pl.meta.trim()
	return fits
}

// marksNow is what the partition's commit says now, in pl's reused marks; at a handover
// (lease set) the runs this member took and has not finished are leased to it. withDone
// false: the started runs only. Its window is in offset order, and what earlier owners
// said of offsets not polled yet comes after it.
func (pl *partitionLedger) marksNow(handover *Lease, withDone bool) *marks {
	m := &pl.marks
	m.reset()
	for _, e := range pl.inflight {
		switch {
		case e.done:
			if withDone {
				m.finished = append(m.finished, e.offset)
			}
		case e.started:
			m.started = append(m.started, pl.startedRun(e, handover))
		case e.unknown && withDone:
			m.unknown = append(m.unknown, offsetRange{e.offset, e.offset})
		}
	}
	for _, off := range notPolled(pl.priorStarted, pl.lastSeen) {
		l, leased := pl.prior.leases[off]
		m.started = append(m.started, startedRun{offset: off, lease: l, leased: leased})
	}
	if withDone {
		m.finished = append(m.finished, notPolled(pl.priorFinished, pl.lastSeen)...)
		for _, r := range pl.prior.unknown {
			if r.last > pl.lastSeen {
				m.unknown = append(m.unknown, offsetRange{max(r.first, pl.lastSeen+1), r.last})
			}
		}
		if pl.unknownBelow > pl.lastSeen+1 {
			m.unknown = append(m.unknown, offsetRange{pl.lastSeen + 1, pl.unknownBelow - 1})
		}
	}
	return m
}

// startedRun is e, a started and unfinished run, and who holds it under a lease.
func (pl *partitionLedger) startedRun(e entry, handover *Lease) startedRun {
	if l, leased := pl.prior.leases[e.offset]; leased && !e.ours {
		return startedRun{offset: e.offset, lease: l, leased: true}
	}
	if e.ours && handover != nil {
		return startedRun{offset: e.offset, lease: *handover, leased: true}
	}
	return startedRun{offset: e.offset}
}

// notPolled is the offsets of sorted above lastSeen.
func notPolled(sorted []int64, lastSeen int64) []int64 {
	i, found := slices.BinarySearch(sorted, lastSeen)
	if found {
		i++
	}
	return sorted[i:]
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

// toCommit returns the snapshots of owned partitions that differ from what is committed;
// for those in handover (a revoke), the one that leases this member's runs to it. A
// partition being revoked goes out in its handover's commit only: another commit (a take's,
// the periodic one) would say its runs without their leases while the revoke reads back
// what the group holds, and its next owner would decide runs that go on here.
func (l *ledger) toCommit(handover map[topicPartition]Lease) map[topicPartition]snapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[topicPartition]snapshot{}
	for tp, pl := range l.parts {
		var lease *Lease
		if h, ok := handover[tp]; ok {
			lease = &h
		} else if pl.revoking || pl.version == pl.committed.version && !pl.resend {
			continue // the broker has this version already: nothing to encode
		}
		s, ok := pl.snapshot(lease)
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
		pl.committed, pl.resend = s, false
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
		pl.resend = true
	}
}

// unknownOffset stands for "whatever the broker has": no snapshot equals it.
const unknownOffset = -2

// committedVersion says whether the start m is in the partition's commit, and whether the
// ownership it was recorded in is still this member's. A start the handover's commit
// carried is covered though the partition went on: the next owner sees it leased to us.
func (l *ledger) committedVersion(m startMark) (covered, owned bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return m.pl.committed.version >= m.version, !m.pl.released
}

// owned is every partition the ledger has.
func (l *ledger) owned() map[string][]int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return partitionsOf(l.parts)
}

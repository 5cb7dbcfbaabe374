package consumer

import (
	"cmp"
	"errors"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// polled is what the ledger knows of a record as it is registered.
type polled struct {
	pl    *partitionLedger // the ownership it was polled under
	prior Prior
	lease Lease // PriorLeased: its holder
}

// add registers a polled record and says what earlier owners knew of it. ok is false when
// the partition is not owned (the fetch raced a revoke): the caller must not run it. pause
// is true when this record filled the partition's window or its runs (pauseOpenRuns): the
// caller pauses its fetching. A run parked for another replica's lease is not counted.
func (l *ledger) add(rec *kgo.Record) (p polled, ok, pause bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	pl, ok := l.parts[topicPartition{rec.Topic, rec.Partition}]
	if !ok || rec.Offset <= pl.lastSeen {
		// Not owned, or polled again (a rewound fetch after a pause): already tracked.
		return polled{}, false, false
	}
	p.pl = pl
	e := entry{offset: rec.Offset, epoch: rec.LeaderEpoch, tsMilli: rec.Timestamp.UnixMilli()}
	switch lease, leased := pl.prior.leases[rec.Offset]; {
	case pl.prior.finished[rec.Offset]:
		p.prior = PriorFinished
		e.done = true // stays "finished" in our commits even before the handler returns
	case leased:
		p.prior, p.lease = PriorLeased, lease
		e.started = true
	case pl.prior.started[rec.Offset]:
		p.prior = PriorStarted
		e.started = true
	case rec.Offset < pl.unknownBelow || pl.prior.isUnknown(rec.Offset):
		p.prior = PriorUnknown
		e.unknown = true
	}
	// A run parked for another replica's lease is not this member's open run.
	e.counted = !e.done && p.prior != PriorLeased
	return p, true, l.track(pl, e)
}

// track appends e, the partition's newest offset, and says whether that filled the
// partition's window or its runs (pauseOpenRuns): then it is paused; l.mu is held.
func (l *ledger) track(pl *partitionLedger, e entry) (pause bool) {
	pl.inflight = append(pl.inflight, e)
	if e.counted {
		pl.open++
	}
	pl.lastSeen = e.offset
	pl.popDone()
	pl.version++
	if !pl.paused && (len(pl.inflight) >= l.maxWindow || pl.open >= pauseOpenRuns) {
		pl.paused = true
		return true
	}
	return false
}

// startMark is a start recorded by markStarted: the ownership (partition ledger) it was
// recorded in, the version that must be committed, and the entry as it was before: what
// unmarkStarted puts back of its start.
type startMark struct {
	pl      *partitionLedger
	version uint64
	was     entry
}

// markStarted records that rec's run is taken by this member (its command is about to run,
// or it is about to be closed as interrupted); the returned version must be committed
// before. It refuses (errNoRoom) a start the partition's commit could not say, leased to
// handover, within Kafka's metadata limit: the run waits until others end.
func (l *ledger) markStarted(rec *kgo.Record, pl *partitionLedger, handover Lease) (m startMark, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.find(rec, pl)
	if e == nil || pl.revoking {
		return startMark{}, ErrNotOwned
	}
	m.was = *e
	if !e.started || !e.ours {
		e.started, e.ours, e.unknown = true, true, false
		if !pl.fits(handover) {
			*e = m.was
			return startMark{}, errNoRoom
		}
		pl.version++
	}
	m.pl, m.version = pl, pl.version
	return m, nil
}

// errNoRoom: the partition's commit metadata has no room for one more start (README
// "Delivery": the run waits).
var errNoRoom = errors.New("no room in the partition's commit metadata for another start")

// unmarkStarted takes back a start this member recorded and gave up on before the command
// ran: later commits must not tell the next owner that the run may have executed, nor, of
// an earlier owner's start it took over, that this member holds it (a handover would lease
// the run to a member that never ran it, and its next owner would wait out the lease).
func (l *ledger) unmarkStarted(rec *kgo.Record, m startMark) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.find(rec, m.pl)
	if e == nil || e.done || e.started == m.was.started && e.ours == m.was.ours && e.unknown == m.was.unknown {
		return
	}
	e.started, e.ours, e.unknown = m.was.started, m.was.ours, m.was.unknown
	m.pl.version++
}

// finish marks a record's work as done and advances its partition's commit past every
// finished record at the front. resume is true when that brought a paused partition's
// window and runs back under half their limits: the caller resumes its fetching.
func (l *ledger) finish(rec *kgo.Record, pl *partitionLedger) (resume bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.notify()
	e := l.find(rec, pl)
	if e == nil {
		return false
	}
	if e.counted {
		e.counted = false
		pl.open--
	}
	e.done, e.abandoned = true, false
	pl.popDone()
	pl.version++
	if pl.paused && len(pl.inflight) <= l.maxWindow/2 && pl.open <= pauseOpenRuns/2 {
		pl.paused = false
		return true
	}
	return false
}

// park stops counting a record's run against its partition's open runs: it waits for an
// earlier holder (Ticket.Park), for as long as that one runs it, and must not keep the
// partition paused meanwhile. Its start stays in the commits. resume is as for finish.
func (l *ledger) park(rec *kgo.Record, pl *partitionLedger) (resume bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.find(rec, pl)
	if e == nil || !e.counted {
		return false
	}
	e.counted = false
	pl.open--
	if pl.paused && len(pl.inflight) <= l.maxWindow/2 && pl.open <= pauseOpenRuns/2 {
		pl.paused = false
		return true
	}
	return false
}

// abandon marks a record that will not finish here (the agent is stopping before it
// started): its offset stays uncommitted for the next owner.
func (l *ledger) abandon(rec *kgo.Record, pl *partitionLedger) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.notify()
	if e := l.find(rec, pl); e != nil && !e.done {
		e.abandoned = true
	}
}

// seen says whether run id was handled on pl's partition (by anyone who owned it) or on
// another partition before this member got its own (others), and whether that history
// would know of a run whose message is from at (covered).
func (l *ledger) seen(pl *partitionLedger, id string, at time.Time) (dup, covered bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, dup = pl.history.runs[id]
	if _, other := l.others.runs[id]; other {
		dup = true
	}
	return dup, pl.history.covers(at)
}

// handled adds run id to pl's history, which its commits carry.
func (l *ledger) handled(pl *partitionLedger, id string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := pl.history.runs[id]; !ok && !pl.released {
		pl.history.add(id, at)
		pl.version++
	}
}

// changedC is closed at the next change notify announces.
func (l *ledger) changedC() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.changed == nil {
		l.changed = make(chan struct{})
	}
	return l.changed
}

// notify announces a change to those waiting on changedC; a change nobody waits for, as
// most runs' ends are, makes no channel.
func (l *ledger) notify() {
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
}

// windowPaused says whether tp's window is full (its fetching paused) and whether tp is owned.
func (l *ledger) windowPaused(tp topicPartition) (paused, owned bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	pl, ok := l.parts[tp]
	if !ok {
		return false, false
	}
	return pl.paused, true
}

// find locates rec's entry in pl, if pl is still owned, by binary search; l.mu is held.
func (l *ledger) find(rec *kgo.Record, pl *partitionLedger) *entry {
	if pl == nil || l.parts[topicPartition{rec.Topic, rec.Partition}] != pl {
		return nil
	}
	i, found := slices.BinarySearchFunc(pl.inflight, rec.Offset, func(e entry, off int64) int { return cmp.Compare(e.offset, off) })
	if !found {
		return nil
	}
	return &pl.inflight[i]
}

func (pl *partitionLedger) popDone() {
	n := 0
	for n < len(pl.inflight) && pl.inflight[n].done {
		n++
	}
	if n == 0 {
		return
	}
	pl.lastDone, pl.hasDone = pl.inflight[n-1], true
	pl.inflight = pl.inflight[n:]
	if cap(pl.inflight) > 64 && len(pl.inflight) < cap(pl.inflight)/4 {
		// Give back the array a long window left behind.
		pl.inflight = slices.Clone(pl.inflight)
	}
}

// forgetBefore drops from every history the runs whose message is older than t.
func (l *ledger) forgetBefore(t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, pl := range l.parts {
		pl.history.forgetBefore(t)
	}
	l.others.forgetBefore(t)
}

// learnOthers replaces what is known of the other partitions' history.
func (l *ledger) learnOthers(h history) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.others = h
}

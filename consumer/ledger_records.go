package consumer

import (
	"cmp"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"
)

// add registers a polled record and says what earlier owners knew of it. ok is false when
// the partition is not owned (the fetch raced a revoke): the caller must not run it. pause
// is true when this record filled the partition's window or its runs (pauseOpenRuns): the
// caller pauses its fetching.
func (l *ledger) add(rec *kgo.Record) (prior Prior, ok, pause bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	pl, ok := l.parts[topicPartition{rec.Topic, rec.Partition}]
	if !ok {
		return Fresh, false, false
	}
	if rec.Offset <= pl.lastSeen {
		// A record polled again (a rewound fetch after a pause): it is already tracked.
		return Fresh, false, false
	}
	e := entry{offset: rec.Offset, epoch: rec.LeaderEpoch, tsMilli: rec.Timestamp.UnixMilli()}
	switch {
	case pl.prior.finished[rec.Offset]:
		prior = PriorFinished
		e.done = true // stays "finished" in our commits even before the handler returns
	case pl.prior.started[rec.Offset]:
		prior = PriorStarted
		e.started = true
	case rec.Offset < pl.unknownBelow:
		prior = PriorUnknown
	}
	pl.inflight = append(pl.inflight, e)
	if !e.done {
		pl.open++
	}
	pl.lastSeen = rec.Offset
	pl.popDone()
	pl.version++
	if !pl.paused && (len(pl.inflight) >= l.maxWindow || pl.open >= pauseOpenRuns) {
		pl.paused = true
		pause = true
	}
	return prior, true, pause
}

// startMark is a start recorded by markStarted: the ownership (partition ledger) it was
// recorded in, the version that must be committed, and whether this call set the mark.
type startMark struct {
	pl      *partitionLedger
	version uint64
	set     bool
}

// markStarted records that rec's command is about to run; the returned version must be
// committed before it does.
func (l *ledger) markStarted(rec *kgo.Record) (m startMark, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	pl, e := l.find(rec)
	if e == nil || pl.revoking {
		return startMark{}, false
	}
	if !e.started {
		e.started = true
		pl.version++
		m.set = true
	}
	m.pl, m.version = pl, pl.version
	return m, true
}

// unmarkStarted takes back a start this member recorded and gave up on before the command
// ran: later commits must not tell the next owner that the run may have executed.
func (l *ledger) unmarkStarted(rec *kgo.Record, m startMark) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !m.set {
		return // an earlier owner's mark: it stays
	}
	if pl, e := l.find(rec); e != nil && pl == m.pl && e.started && !e.done {
		e.started = false
		pl.version++
	}
}

// finish marks a record's work as done and advances its partition's commit past every
// finished record at the front. resume is true when that brought a paused partition's
// window and runs back under half their limits: the caller resumes its fetching.
func (l *ledger) finish(rec *kgo.Record) (resume bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.notify()
	pl, e := l.find(rec)
	if e == nil {
		return false
	}
	if !e.done {
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

// abandon marks a record that will not finish here (the agent is stopping before it
// started): its offset stays uncommitted for the next owner, and revokes do not wait for it.
func (l *ledger) abandon(rec *kgo.Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.notify()
	if _, e := l.find(rec); e != nil && !e.done {
		e.abandoned = true
	}
}

func (l *ledger) notify() {
	close(l.changed)
	l.changed = make(chan struct{})
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

// find locates rec's entry by binary search; l.mu is held.
func (l *ledger) find(rec *kgo.Record) (*partitionLedger, *entry) {
	pl, ok := l.parts[topicPartition{rec.Topic, rec.Partition}]
	if !ok {
		return nil, nil
	}
	i, found := slices.BinarySearchFunc(pl.inflight, rec.Offset, func(e entry, off int64) int { return cmp.Compare(e.offset, off) })
	if !found {
		return pl, nil
	}
	return pl, &pl.inflight[i]
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

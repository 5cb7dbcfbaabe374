package consumer

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/port-runner/port-runner/internal/clock"
)

// Prior is what earlier owners of a partition left known about a record.
type Prior int

const (
	// Fresh: nobody started it (or it is past what any earlier owner polled).
	Fresh Prior = iota
	// PriorStarted: an earlier owner committed that it started the run and never that it
	// finished: its command may have run, and Port may or may not have the termination.
	PriorStarted
	// PriorFinished: an earlier owner closed the run; it must not run again.
	PriorFinished
	// PriorUnknown: nothing says whether anyone ran it (a new group reading from the
	// earliest offset, or progress metadata that could not be decoded): only Port knows.
	PriorUnknown
	// PriorLeased: an earlier owner started it and handed the partition over while it ran:
	// it still holds the run under a lease (Learned.Lease) and closes it in Port itself.
	PriorLeased
)

func (p Prior) String() string {
	return [...]string{"fresh", "started-before", "finished-before", "unknown", "leased"}[p]
}

// ledger tracks, per owned partition, the records handed to the pool, which of them started
// and which finished. The committed offset is the oldest unfinished record; the commit's
// metadata carries the started and finished offsets above it, so a later owner knows which
// runs may have executed (ask Port) and which surely did (skip), at no Port request.
type ledger struct {
	mu        sync.Mutex
	parts     map[topicPartition]*partitionLedger
	changed   chan struct{} // closed whenever a record finishes, is abandoned or released; nil until waited on
	maxWindow int           // see defaultMaxWindow
	// others is the history of partitions this member does not own, as committed when it
	// last got partitions: a copy of a message on another partition is known too.
	others history
	// maxFuture: how far ahead of this clock a message's time may be (Options.MaxFuture).
	maxFuture time.Duration
}

type topicPartition struct {
	topic     string
	partition int32
}

type partitionLedger struct {
	// inflight is every polled offset from the committable one on, in offset order (records
	// arrive in order per partition), as offsets and flags only: a finished run behind a
	// long one costs a few bytes, not its record. Lookups are binary searches.
	inflight []entry
	lastDone entry // the last entry popped off the front; valid when hasDone
	hasDone  bool
	// paused: the window of offsets behind the head reached MaxWindow, or the partition's
	// unfinished runs reached pauseOpenRuns, so fetching stopped until they finish.
	paused bool
	// open: entries of inflight this member counts against pauseOpenRuns: not done, and not
	// parked for another replica's lease (those are the earlier owner's, bounded by what its
	// commit carried; counting them would pause the partition for as long as that replica
	// runs them).
	open  int
	prior progress // what earlier owners committed (leases and unknown ranges for every offset)
	// priorStarted and priorFinished are prior's started and finished offsets, sorted: its
	// commits carry those not polled yet.
	priorStarted, priorFinished []int64
	// unknownBelow: offsets before it with no prior mark are PriorUnknown.
	unknownBelow int64
	lastSeen     int64  // highest offset registered; -1 before any
	version      uint64 // bumped on every change the commit carries
	// committed is what the broker has for this partition (from the fetch at assignment,
	// then from our commits).
	committed snapshot
	resend    bool // the last commit's outcome is unknown: send again, whatever the version
	highWater int64
	history   history       // the run ids handled on it (earlier owners' and ours)
	since     clock.Instant // when this member got it
	revoking  bool          // a revoke began: no new command may start
	released  bool          // no longer this member's: its tickets' work is dropped
	// handover ends when a revoke begins: a run of the partition that has not started by
	// then must not start (Ticket.Handover).
	handover    context.Context
	endHandover context.CancelFunc
	// marks and meta are the buffers its commits are written in, reused (l.mu).
	marks marks
	meta  metaWriter
}

type entry struct {
	offset    int64
	epoch     int32 // the record's leader epoch, carried by the commit
	tsMilli   int64 // the record's timestamp (Unix ms), for the age of waiting work
	started   bool  // a command may have run: an earlier owner's mark, or ours
	ours      bool  // this member took the run: at a handover it holds it under a lease
	unknown   bool  // nothing says whether it ran (PriorUnknown): said so again in our commits
	done      bool  // closed, or skipped for good
	counted   bool  // counted in the partition's open runs until done
	abandoned bool  // left unfinished on purpose (agent stopping): not committed past
}

// defaultMaxWindow bounds a partition's offsets from the committable one on; past it the
// partition is paused until its head finishes.
const defaultMaxWindow = 10000

// A partition's unfinished runs are entries of its commit metadata, which Kafka caps at 4 KiB,
// so a partition holds at most maxOpenRuns of them whatever executor.maxConcurrent is (a
// replica's pool fills from several partitions): its fetching pauses at pauseOpenRuns, and
// the poll that reached it hands over at most maxPollRecords. TestProgressFitsKafkasMetadataLimit
// proves maxOpenRuns fit, with as many of an earlier owner's.
const (
	maxOpenRuns    = 100
	maxPollRecords = 50
	pauseOpenRuns  = maxOpenRuns - maxPollRecords
)

func newLedger(maxFuture time.Duration) *ledger {
	return &ledger{parts: map[topicPartition]*partitionLedger{}, maxWindow: defaultMaxWindow,
		others: newHistory(), maxFuture: maxFuture}
}

// assigned is one partition's committed state when this member got it.
type assigned struct {
	offset   int64 // -1: none committed
	meta     string
	progress progress
	// unknownBelow: records before this offset that progress does not mention are
	// PriorUnknown (0: none are).
	unknownBelow int64
	// fromEnd: none committed and the group starts at the end (startOffset latest), listed
	// as unknownBelow: that end is committed, so that the partition's next owner starts
	// where this one did, not at the end of its own time (what reached the partition
	// between the two would be read by neither).
	fromEnd bool
}

// emptyProgress is assigned progress of a partition nobody committed for: nothing is
// started or finished, and no history is missing.
func emptyProgress() progress {
	p := newProgress()
	p.history.known = true
	return p
}

// assign starts tracking partitions this member now owns, with what earlier owners left.
func (l *ledger) assign(parts map[topicPartition]assigned) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for tp, a := range parts {
		if _, ok := l.parts[tp]; ok {
			continue
		}
		handover, endHandover := context.WithCancel(context.Background())
		prior := a.progress
		if prior.started == nil {
			prior = emptyProgress()
		}
		if !prior.history.known {
			// Earlier commits (an older agent's, or unreadable ones) say nothing of the runs
			// handled: the history knows those whose message is from a time no earlier
			// run's can be, and older messages are asked about in Port.
			prior.history.known, prior.history.cover = true, time.Now().Add(l.maxFuture).Unix()
		}
		l.parts[tp] = &partitionLedger{
			handover:      handover,
			endHandover:   endHandover,
			prior:         prior,
			priorStarted:  sortedOffsets(prior.started),
			priorFinished: sortedOffsets(prior.finished),
			history:       prior.history,
			unknownBelow:  a.unknownBelow,
			lastSeen:      -1,
			committed:     snapshot{offset: kgo.EpochOffset{Epoch: -1, Offset: a.offset}, meta: a.meta},
			since:         clock.Now(),
		}
		if a.fromEnd {
			// As if the record before the end was done, and not yet committed: the next
			// commit, periodic or at a handover, says the end.
			pl := l.parts[tp]
			pl.hasDone, pl.lastDone = true, entry{offset: a.unknownBelow - 1, epoch: -1, done: true}
			pl.resend = true
		}
	}
}

// release stops tracking partitions: their later completions are dropped, never committed,
// because franz-go would commit offsets for partitions another member now owns. It returns
// the ledgers released, for the caller to hand to Consumer.lose in the same call: a Take
// that sees its partition released waits until lose decides its ticket (Ticket.isDecided).
func (l *ledger) release(parts map[string][]int32) []*partitionLedger {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*partitionLedger
	for topic, ps := range parts {
		for _, p := range ps {
			tp := topicPartition{topic, p}
			if pl, ok := l.parts[tp]; ok {
				pl.released = true
				pl.endHandover()
				delete(l.parts, tp)
				out = append(out, pl)
			}
		}
	}
	l.notify()
	return out
}

// revoking marks partitions whose revoke has begun: runs of theirs not started yet must not
// start (they would be the next owner's), so the handover's commit says all that started.
func (l *ledger) revoking(revoked map[string][]int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for topic, parts := range revoked {
		for _, p := range parts {
			if pl, ok := l.parts[topicPartition{topic, p}]; ok {
				pl.revoking = true
				pl.endHandover()
			}
		}
	}
}

func (l *ledger) owns(topic string, partition int32) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.parts[topicPartition{topic, partition}]
	return ok
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
		base, ok := pl.base()
		if !ok {
			continue // nothing consumed yet: the lag is unknown, not the whole log
		}
		out[tp.partition] = max(pl.highWater-base.Offset, 0)
	}
	return out
}

// unstarted returns, per owned partition, the oldest record this member holds whose run has
// not started (its timestamp known), or else the next offset it will poll (timestamp
// unknown: not fetched yet). Before anything was polled that is the committed offset, or
// -1 when there is none.
func (l *ledger) unstarted() map[int32]Unstarted {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[int32]Unstarted{}
	for tp, pl := range l.parts {
		u := Unstarted{Offset: pl.committed.offset.Offset}
		if pl.lastSeen >= 0 {
			u.Offset = pl.lastSeen + 1
		}
		for _, e := range pl.inflight {
			if !e.done && !e.started {
				u = Unstarted{Offset: e.offset, Timestamp: time.UnixMilli(e.tsMilli)}
				break
			}
		}
		out[tp.partition] = u
	}
	return out
}

// isReleased says whether pl's partition is no longer this member's.
func (l *ledger) isReleased(pl *partitionLedger) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return pl.released
}

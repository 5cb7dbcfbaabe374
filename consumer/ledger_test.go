package consumer

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func rec(topic string, partition int32, offset int64) *kgo.Record {
	return &kgo.Record{Topic: topic, Partition: partition, Offset: offset, LeaderEpoch: 7}
}

// assignFresh gives l partitions nobody committed anything for.
func assignFresh(l *ledger, topic string, parts ...int32) {
	m := map[topicPartition]assigned{}
	for _, p := range parts {
		m[topicPartition{topic, p}] = assigned{offset: -1}
	}
	l.assign(m)
}

// plOf is the ledger r's partition is owned under now (nil: not owned).
func plOf(l *ledger, r *kgo.Record) *partitionLedger {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.parts[topicPartition{r.Topic, r.Partition}]
}

// inflight counts registered, unfinished records.
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

// noHistory ends the metadata of a partition nobody handled a run of yet.
const noHistory = " c=0"

func commitOf(t *testing.T, l *ledger, topic string, p int32) snapshot {
	t.Helper()
	s, ok := l.toCommit(nil)[topicPartition{topic, p}]
	if !ok {
		t.Fatalf("no commit wanted for %s/%d", topic, p)
	}
	return s
}

func TestLedgerCommitsOnlyUpToOldestUnfinished(t *testing.T) {
	l := newLedger(5 * time.Minute)
	assignFresh(l, "runs", 0, 1)
	r := []*kgo.Record{rec("runs", 0, 10), rec("runs", 0, 11), rec("runs", 0, 12)}
	for _, x := range r {
		if p, ok, _ := l.add(x); !ok || p.prior != Fresh {
			t.Fatalf("add = %v, %v", p.prior, ok)
		}
	}
	if s := commitOf(t, l, "runs", 0); s.offset.Offset != 10 || s.meta != metaPrefix+noHistory {
		t.Fatalf("nothing started or finished: commit %+v, want offset 10 with empty progress", s)
	}
	l.finish(r[2], plOf(l, r[2])) // out of order: 12 before 10 and 11
	if s := commitOf(t, l, "runs", 0); s.offset.Offset != 10 || s.meta != metaPrefix+" f=2"+noHistory {
		t.Fatalf("after 12 finished: commit %+v, want offset 10, f=2", s)
	}
	l.finish(r[0], plOf(l, r[0]))
	s := commitOf(t, l, "runs", 0)
	if s.offset.Offset != 11 || s.offset.Epoch != 7 || s.meta != metaPrefix+" f=1"+noHistory {
		t.Fatalf("after 10 finished: commit %+v, want offset 11 epoch 7, f=1", s)
	}
	l.finish(r[1], plOf(l, r[1]))
	s = commitOf(t, l, "runs", 0)
	if s.offset.Offset != 13 || s.meta != metaPrefix+noHistory {
		t.Fatalf("after all finished: commit %+v, want 13", s)
	}
	l.committed(topicPartition{"runs", 0}, s)
	if got := l.toCommit(nil); len(got) != 0 {
		t.Fatalf("already committed, yet commit again %v", got)
	}
	if n := l.inflight(); n != 0 {
		t.Fatalf("inflight = %d", n)
	}
}

func TestLedgerStartedIsCommittedBeforeTheRunStarts(t *testing.T) {
	l := newLedger(5 * time.Minute)
	assignFresh(l, "runs", 0)
	a, b := rec("runs", 0, 0), rec("runs", 0, 1)
	l.add(a)
	l.add(b)
	l.committed(topicPartition{"runs", 0}, commitOf(t, l, "runs", 0))
	v, err := l.markStarted(b, plOf(l, b), Lease{Holder: "m"})
	if err != nil {
		t.Fatal("markStarted refused an owned record")
	}
	if covered, _ := l.committedVersion(v); covered {
		t.Fatal("start counted as committed before any commit")
	}
	s := commitOf(t, l, "runs", 0)
	if s.meta != metaPrefix+" s=1"+noHistory {
		t.Fatalf("commit after start = %q, want s=1", s.meta)
	}
	l.committed(topicPartition{"runs", 0}, s)
	if covered, _ := l.committedVersion(v); !covered {
		t.Fatal("start not covered by the commit that carried it")
	}
}

func TestLedgerCarriesEarlierOwnersProgress(t *testing.T) {
	l := newLedger(5 * time.Minute)
	prior, ok, err := decodeProgress(100, metaPrefix+" s=1,3 f=2"+noHistory)
	if err != nil || !ok {
		t.Fatal(err)
	}
	l.assign(map[topicPartition]assigned{{"runs", 0}: {offset: 100, meta: metaPrefix + " s=1,3 f=2" + noHistory, progress: prior}})
	if got := l.toCommit(nil); len(got) != 0 {
		t.Fatalf("commit %v before polling anything: the earlier commit must stand", got)
	}
	want := map[int64]Prior{100: Fresh, 101: PriorStarted, 102: PriorFinished}
	recs := map[int64]*kgo.Record{}
	for off := int64(100); off <= 102; off++ {
		recs[off] = rec("runs", 0, off)
		p, ok, _ := l.add(recs[off])
		if !ok || p.prior != want[off] {
			t.Fatalf("offset %d: prior %v, want %v", off, p.prior, want[off])
		}
	}
	// 101 is still the earlier owner's unresolved start, 102 is finished, and 103, not polled
	// yet, must survive a crash of this member too.
	if s, _ := l.parts[topicPartition{"runs", 0}].snapshot(nil); s.offset.Offset != 100 || s.meta != metaPrefix+" s=1,3 f=2"+noHistory {
		t.Fatalf("snapshot %+v, want offset 100 with s=1,3 f=2", s)
	}
	if got := l.toCommit(nil); len(got) != 0 {
		t.Fatalf("commit %v that says what the broker has already", got)
	}
	l.finish(recs[100], plOf(l, recs[100]))
	l.finish(recs[101], plOf(l, recs[101]))
	l.finish(recs[102], plOf(l, recs[102])) // the handler returns for the finished one too
	if s := commitOf(t, l, "runs", 0); s.offset.Offset != 103 || s.meta != metaPrefix+" s=0"+noHistory {
		t.Fatalf("commit %+v, want offset 103 with s=0 (the earlier owner's start of 103)", s)
	}
}

func TestLedgerDropsWorkOfPartitionsNoLongerOwned(t *testing.T) {
	l := newLedger(5 * time.Minute)
	assignFresh(l, "runs", 0)
	r := rec("runs", 0, 5)
	p, _, _ := l.add(r)
	l.release(map[string][]int32{"runs": {0}})
	l.finish(r, p.pl) // completes after the revoke
	if got := l.toCommit(nil); len(got) != 0 {
		t.Fatalf("committed %v for a partition this member no longer owns", got)
	}
	if _, ok, _ := l.add(rec("runs", 0, 6)); ok {
		t.Fatal("accepted a record of a partition not owned")
	}
	if _, err := l.markStarted(r, p.pl, Lease{Holder: "m"}); err == nil {
		t.Fatal("marked a start on a partition not owned")
	}
	assignFresh(l, "runs", 0)
	if got := l.toCommit(nil); len(got) != 0 {
		t.Fatalf("reassigned partition commits %v before any work", got)
	}
}

func TestLedgerLag(t *testing.T) {
	l := newLedger(5 * time.Minute)
	assignFresh(l, "runs", 2)
	l.setHighWater("runs", 2, 100)
	if _, ok := l.lags()[2]; ok {
		t.Fatal("lag reported before anything was consumed")
	}
	r := rec("runs", 2, 40)
	l.add(r)
	l.finish(r, plOf(l, r))
	if got := l.lags()[2]; got != 59 {
		t.Fatalf("lag = %d, want 59", got)
	}
}

// TestLedgerRecommitsAfterAnUncertainCommit: a commit whose outcome is unknown may have
// reached the broker; the next commit must go out even if the ledger is back where it was
// (a start that was marked, sent, and then unmarked).
func TestLedgerRecommitsAfterAnUncertainCommit(t *testing.T) {
	l := newLedger(5 * time.Minute)
	assignFresh(l, "runs", 0)
	r := rec("runs", 0, 0)
	l.add(r)
	tp := topicPartition{"runs", 0}
	before := commitOf(t, l, "runs", 0)
	l.committed(tp, before)
	m, _ := l.markStarted(r, plOf(l, r), Lease{Holder: "m"})
	sent := commitOf(t, l, "runs", 0) // carries s=0; its answer is lost
	if sent.meta == before.meta {
		t.Fatal("the start did not change the commit")
	}
	l.uncertain(tp)
	l.unmarkStarted(r, m) // the run will not start after all
	again, ok := l.toCommit(nil)[tp]
	if !ok || again.meta != before.meta {
		t.Fatalf("after an uncertain commit, want the unmarked state committed again, got %+v (%v)", again, ok)
	}
	if covered, _ := l.committedVersion(m); covered {
		t.Fatal("an uncertain commit counted the start as committed")
	}
}

// TestLedgerWindowPausesBehindALongRun: finished offsets behind an unfinished head fill the
// partition's window; at the limit the partition is paused, and it resumes once the head
// finishes. The ledger keeps offsets, never the records.
func TestLedgerWindowPausesBehindALongRun(t *testing.T) {
	l := newLedger(5 * time.Minute)
	l.maxWindow = 10
	assignFresh(l, "runs", 0)
	head := rec("runs", 0, 0)
	head.Value = make([]byte, 4096)
	if _, ok, pause := l.add(head); !ok || pause {
		t.Fatalf("add head: ok %v pause %v", ok, pause)
	}
	for off := int64(1); off < 10; off++ {
		r := rec("runs", 0, off)
		_, ok, pause := l.add(r)
		if !ok || pause != (off == 9) {
			t.Fatalf("add %d: ok %v pause %v", off, ok, pause)
		}
		if l.finish(r, plOf(l, r)) {
			t.Fatalf("finishing %d behind the head resumed the partition", off)
		}
	}
	if paused, _ := l.windowPaused(topicPartition{"runs", 0}); !paused {
		t.Fatal("not paused at the window limit")
	}
	if s := commitOf(t, l, "runs", 0); s.offset.Offset != 0 || s.meta != "port-runner/1 f=1-9"+noHistory {
		t.Fatalf("commit %+v", s)
	}
	if _, ok, _ := l.add(rec("runs", 0, 5)); ok {
		t.Fatal("an offset polled again was registered twice")
	}
	if !l.finish(head, plOf(l, head)) {
		t.Fatal("finishing the head did not resume the partition")
	}
	if s := commitOf(t, l, "runs", 0); s.offset.Offset != 10 || s.offset.Epoch != 7 || s.meta != "port-runner/1"+noHistory {
		t.Fatalf("commit after the head %+v", s)
	}
}

// BenchmarkLedgerBehindALongRun: 20,000 records finish behind one unfinished head on one
// partition, then a commit snapshot: lookups stay O(log n), memory a few bytes per offset.
func BenchmarkLedgerBehindALongRun(b *testing.B) {
	for b.Loop() {
		l := newLedger(5 * time.Minute)
		assignFresh(l, "runs", 0)
		l.add(rec("runs", 0, 0))
		for off := int64(1); off <= 20000; off++ {
			r := rec("runs", 0, off)
			l.add(r)
			l.finish(r, plOf(l, r))
		}
		l.toCommit(nil)
	}
}

// TestTakeWaitsForRoomInTheMetadata: a partition whose commit can say no more starts and
// leases within Kafka's 4 KiB (here: runs of 35 earlier holders with long member ids, still
// going under their leases) takes no run until one of them is decided: a start that could
// not be committed, or a lease cut off, would let a run go twice.
func TestTakeWaitsForRoomInTheMetadata(t *testing.T) {
	const holders = 35
	prior := newProgress()
	prior.history.known = true
	for i := range int64(holders) {
		prior.started[i] = true
		prior.leases[i] = Lease{Holder: fmt.Sprintf("holder-%02d-%s", i, strings.Repeat("x", 98)), Bound: time.Hour}
	}
	l := newLedger(5 * time.Minute)
	l.assign(map[topicPartition]assigned{{"runs", 0}: {offset: 0, progress: prior}})
	var recs []*kgo.Record
	for off := range int64(holders + 1) {
		r := rec("runs", 0, off)
		if _, ok, _ := l.add(r); !ok {
			t.Fatal("not owned")
		}
		recs = append(recs, r)
	}
	if meta := commitOf(t, l, "runs", 0).meta; len(meta) > maxMetaBytes {
		t.Fatalf("the earlier holders' leases alone are %d bytes", len(meta))
	}
	mine := Lease{Holder: "kgo-" + strings.Repeat("m", 100), Bound: time.Hour}
	fresh := recs[holders]
	if _, err := l.markStarted(fresh, plOf(l, fresh), mine); !errors.Is(err, errNoRoom) {
		t.Fatalf("took a run the metadata has no room for: %v", err)
	}
	if meta := commitOf(t, l, "runs", 0).meta; strings.Contains(meta, "s=0-"+strconv.FormatInt(holders, 36)) {
		t.Fatalf("the refused start is in the commit: %q", meta)
	}
	l.finish(recs[0], plOf(l, recs[0])) // an earlier holder's run is decided
	if _, err := l.markStarted(fresh, plOf(l, fresh), mine); err != nil {
		t.Fatalf("no room once a lease ended: %v", err)
	}
	s, ok := plOf(l, fresh).snapshot(&mine)
	if got, _, err := decodeProgress(s.offset.Offset, s.meta); !ok || err != nil || len(s.meta) > maxMetaBytes || got.leases[fresh.Offset] != mine {
		t.Fatalf("the handover's commit (%d bytes, %v) does not lease the run: %+v", len(s.meta), err, got.leases)
	}
}

// TestHistoryTravelsWithThePartition: a run id handled on a partition is in its commit, so
// the partition's next owner knows a second message of it (a producer's retry, a replay) at
// no Port request; a message from before the history's cover is not known either way.
func TestHistoryTravelsWithThePartition(t *testing.T) {
	now := time.Now()
	l := newLedger(5 * time.Minute)
	assignFresh(l, "runs", 0)
	first := rec("runs", 0, 0)
	l.add(first)
	l.handled(plOf(l, first), "r_twice", now)
	l.finish(first, plOf(l, first))
	s := commitOf(t, l, "runs", 0)

	next := newLedger(5 * time.Minute) // the partition's next owner
	p, ok, err := decodeProgress(s.offset.Offset, s.meta)
	if !ok || err != nil {
		t.Fatalf("decode %q: %v", s.meta, err)
	}
	next.assign(map[topicPartition]assigned{{"runs", 0}: {offset: s.offset.Offset, meta: s.meta, progress: p}})
	copyRec := rec("runs", 0, 1)
	next.add(copyRec)
	if dup, covered := next.seen(plOf(next, copyRec), "r_twice", now); !dup || !covered {
		t.Fatalf("the copy: dup %v, covered %v; want a known duplicate", dup, covered)
	}
	if dup, covered := next.seen(plOf(next, copyRec), "r_new", now); dup || !covered {
		t.Fatalf("a new run: dup %v, covered %v; want new, and known to be", dup, covered)
	}
}

// TestHistoryOfAnOlderCommitStartsNow: a commit that says nothing of the runs handled (an
// older agent's) covers nothing before now and the clock skew a message may have: such
// messages are asked about in Port; later ones are known from then on.
func TestHistoryOfAnOlderCommitStartsNow(t *testing.T) {
	const skew = 5 * time.Minute
	p, ok, err := decodeProgress(0, metaPrefix+" s=1")
	if !ok || err != nil || p.history.known {
		t.Fatalf("decode: %+v %v %v", p, ok, err)
	}
	l := newLedger(skew)
	l.assign(map[topicPartition]assigned{{"runs", 0}: {offset: 0, progress: p}})
	r := rec("runs", 0, 0)
	l.add(r)
	pl := plOf(l, r)
	if _, covered := l.seen(pl, "r_a", time.Now()); covered {
		t.Fatal("a message from now is covered by a history nobody kept")
	}
	later := time.Now().Add(skew + time.Minute)
	if _, covered := l.seen(pl, "r_b", later); !covered {
		t.Fatal("a message from after the cover is not covered")
	}
	l.handled(pl, "r_b", later)
	if s := commitOf(t, l, "runs", 0); !strings.Contains(s.meta, " c=") || !strings.Contains(s.meta, "r_b.") {
		t.Fatalf("commit %q: want the history's cover and r_b", s.meta)
	}
}

// TestLedgerPausesAPartitionAtItsRunLimit: a replica may run up to 1,000 runs, but one
// partition's unfinished runs are each an entry of its commit metadata, which Kafka caps at
// 4 KiB: the partition is paused once it holds pauseOpenRuns of them, so with the records
// one poll still hands over it never holds maxOpenRuns, the number
// TestProgressFitsKafkasMetadataLimit proves to fit; it resumes once half of those finished.
func TestLedgerPausesAPartitionAtItsRunLimit(t *testing.T) {
	if pauseOpenRuns+maxPollRecords > maxOpenRuns {
		t.Fatalf("a partition paused at %d runs can receive %d more in a poll: over %d", pauseOpenRuns, maxPollRecords, maxOpenRuns)
	}
	l := newLedger(5 * time.Minute)
	assignFresh(l, "runs", 0)
	var recs []*kgo.Record
	for off := range int64(pauseOpenRuns) {
		r := rec("runs", 0, off)
		recs = append(recs, r)
		if _, ok, pause := l.add(r); !ok || pause != (off == pauseOpenRuns-1) {
			t.Fatalf("add %d: ok %v pause %v", off, ok, pause)
		}
	}
	if paused, _ := l.windowPaused(topicPartition{"runs", 0}); !paused {
		t.Fatalf("not paused with %d unfinished runs", pauseOpenRuns)
	}
	// The runs finish out of order: the limit counts unfinished runs, not offsets.
	for i, r := range recs[1 : pauseOpenRuns/2+1] {
		if resumed := l.finish(r, plOf(l, r)); resumed != (i == pauseOpenRuns/2-1) {
			t.Fatalf("finish %d of %d: resumed %v", i+1, pauseOpenRuns/2, resumed)
		}
	}
}

// TestParkedRunsDoNotHoldAPartitionPaused: runs parked to wait for another replica's lease
// (Ticket.Park) may wait for hours; they leave the partition's open runs, so a partition
// they paused resumes fetching.
func TestParkedRunsDoNotHoldAPartitionPaused(t *testing.T) {
	l := newLedger(5 * time.Minute)
	assignFresh(l, "runs", 0)
	var recs []*kgo.Record
	for off := range int64(pauseOpenRuns) {
		r := rec("runs", 0, off)
		recs = append(recs, r)
		l.add(r)
	}
	if paused, _ := l.windowPaused(topicPartition{"runs", 0}); !paused {
		t.Fatalf("not paused with %d unfinished runs", pauseOpenRuns)
	}
	resumed := false
	for _, r := range recs {
		if l.park(r, plOf(l, r)) {
			resumed = true
		}
		if l.park(r, plOf(l, r)) {
			t.Fatal("a run parked twice resumed the partition twice")
		}
	}
	if paused, _ := l.windowPaused(topicPartition{"runs", 0}); paused || !resumed {
		t.Fatalf("every run parked, the partition still paused (resumed %v)", resumed)
	}
	// A parked run that then finishes is not taken off the count twice.
	l.finish(recs[0], plOf(l, recs[0]))
	if pl := plOf(l, recs[1]); pl.open != 0 {
		t.Fatalf("open runs %d after every run parked, want 0", pl.open)
	}
}

// A take of an earlier owner's start that fails before the command runs gives the start
// back as it was: the earlier owner's, not this member's, so a handover does not lease it
// to a member that never ran it.
func TestGivenUpTakeOfAnEarlierStartIsNotOurs(t *testing.T) {
	l := newLedger(5 * time.Minute)
	prior, _, err := decodeProgress(100, metaPrefix+" s=1"+noHistory)
	if err != nil {
		t.Fatal(err)
	}
	l.assign(map[topicPartition]assigned{{"runs", 0}: {offset: 100, meta: metaPrefix + " s=1" + noHistory, progress: prior}})
	r := rec("runs", 0, 101)
	if p, ok, _ := l.add(r); !ok || p.prior != PriorStarted {
		t.Fatalf("add: %v %v, want PriorStarted", p.prior, ok)
	}
	m, err := l.markStarted(r, plOf(l, r), Lease{Holder: "me", Bound: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	l.unmarkStarted(r, m)
	if e := l.find(r, plOf(l, r)); e == nil || !e.started || e.ours {
		t.Fatalf("entry %+v, want the earlier owner's start, not ours", e)
	}
	if s, ok := plOf(l, r).snapshot(&Lease{Holder: "me", Bound: time.Minute}); !ok || strings.Contains(s.meta, "me") {
		t.Fatalf("the handover commit leases the run to this member: %s", s.meta)
	}
}

// A take waiting for room in the metadata hears of every run's end at once (changedC),
// though no channel is made for ends nobody waits for.
func TestLedgerChangeWakesAWaiter(t *testing.T) {
	l := newLedger(5 * time.Minute)
	assignFresh(l, "runs", 0)
	a, b := rec("runs", 0, 0), rec("runs", 0, 1)
	l.add(a)
	l.add(b)
	l.finish(a, plOf(l, a)) // nobody waits
	waiting := l.changedC()
	select {
	case <-waiting:
		t.Fatal("closed before a change")
	default:
	}
	l.finish(b, plOf(l, b))
	select {
	case <-waiting:
	default:
		t.Fatal("a run's end did not wake the waiter")
	}
	if again := l.changedC(); again == waiting {
		t.Fatal("the next wait got the closed channel")
	}
}

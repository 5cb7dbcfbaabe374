package consumer

import (
	"context"
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

func commitOf(t *testing.T, l *ledger, topic string, p int32) snapshot {
	t.Helper()
	s, ok := l.toCommit()[topicPartition{topic, p}]
	if !ok {
		t.Fatalf("no commit wanted for %s/%d", topic, p)
	}
	return s
}

func TestLedgerCommitsOnlyUpToOldestUnfinished(t *testing.T) {
	l := newLedger()
	assignFresh(l, "runs", 0, 1)
	r := []*kgo.Record{rec("runs", 0, 10), rec("runs", 0, 11), rec("runs", 0, 12)}
	for _, x := range r {
		if prior, ok, _ := l.add(x); !ok || prior != Fresh {
			t.Fatalf("add = %v, %v", prior, ok)
		}
	}
	if s := commitOf(t, l, "runs", 0); s.offset.Offset != 10 || s.meta != metaPrefix {
		t.Fatalf("nothing started or finished: commit %+v, want offset 10 with empty progress", s)
	}
	l.finish(r[2]) // out of order: 12 before 10 and 11
	if s := commitOf(t, l, "runs", 0); s.offset.Offset != 10 || s.meta != metaPrefix+" f=2" {
		t.Fatalf("after 12 finished: commit %+v, want offset 10, f=2", s)
	}
	l.finish(r[0])
	s := commitOf(t, l, "runs", 0)
	if s.offset.Offset != 11 || s.offset.Epoch != 7 || s.meta != metaPrefix+" f=1" {
		t.Fatalf("after 10 finished: commit %+v, want offset 11 epoch 7, f=1", s)
	}
	l.finish(r[1])
	s = commitOf(t, l, "runs", 0)
	if s.offset.Offset != 13 || s.meta != metaPrefix {
		t.Fatalf("after all finished: commit %+v, want 13", s)
	}
	l.committed(topicPartition{"runs", 0}, s)
	if got := l.toCommit(); len(got) != 0 {
		t.Fatalf("already committed, yet commit again %v", got)
	}
	if n := l.inflight(); n != 0 {
		t.Fatalf("inflight = %d", n)
	}
}

func TestLedgerStartedIsCommittedBeforeTheRunStarts(t *testing.T) {
	l := newLedger()
	assignFresh(l, "runs", 0)
	a, b := rec("runs", 0, 0), rec("runs", 0, 1)
	l.add(a)
	l.add(b)
	l.committed(topicPartition{"runs", 0}, commitOf(t, l, "runs", 0))
	v, ok := l.markStarted(b)
	if !ok {
		t.Fatal("markStarted refused an owned record")
	}
	if covered, _ := l.committedVersion(topicPartition{"runs", 0}, v); covered {
		t.Fatal("start counted as committed before any commit")
	}
	s := commitOf(t, l, "runs", 0)
	if s.meta != metaPrefix+" s=1" {
		t.Fatalf("commit after start = %q, want s=1", s.meta)
	}
	l.committed(topicPartition{"runs", 0}, s)
	if covered, _ := l.committedVersion(topicPartition{"runs", 0}, v); !covered {
		t.Fatal("start not covered by the commit that carried it")
	}
}

func TestLedgerCarriesEarlierOwnersProgress(t *testing.T) {
	l := newLedger()
	prior, ok, err := decodeProgress(100, metaPrefix+" s=1,3 f=2")
	if err != nil || !ok {
		t.Fatal(err)
	}
	l.assign(map[topicPartition]assigned{{"runs", 0}: {offset: 100, meta: metaPrefix + " s=1,3 f=2", progress: prior}})
	if got := l.toCommit(); len(got) != 0 {
		t.Fatalf("commit %v before polling anything: the earlier commit must stand", got)
	}
	want := map[int64]Prior{100: Fresh, 101: PriorStarted, 102: PriorFinished}
	recs := map[int64]*kgo.Record{}
	for off := int64(100); off <= 102; off++ {
		recs[off] = rec("runs", 0, off)
		p, ok, _ := l.add(recs[off])
		if !ok || p != want[off] {
			t.Fatalf("offset %d: prior %v, want %v", off, p, want[off])
		}
	}
	// 101 is still the earlier owner's unresolved start, 102 is finished, and 103, not polled
	// yet, must survive a crash of this member too.
	if s, _ := l.parts[topicPartition{"runs", 0}].snapshot(); s.offset.Offset != 100 || s.meta != metaPrefix+" s=1,3 f=2" {
		t.Fatalf("snapshot %+v, want offset 100 with s=1,3 f=2", s)
	}
	if got := l.toCommit(); len(got) != 0 {
		t.Fatalf("commit %v that says what the broker has already", got)
	}
	l.finish(recs[100])
	l.finish(recs[101])
	l.finish(recs[102]) // the handler returns for the finished one too
	if s := commitOf(t, l, "runs", 0); s.offset.Offset != 103 || s.meta != metaPrefix+" s=0" {
		t.Fatalf("commit %+v, want offset 103 with s=0 (the earlier owner's start of 103)", s)
	}
}

func TestLedgerDropsWorkOfPartitionsNoLongerOwned(t *testing.T) {
	l := newLedger()
	assignFresh(l, "runs", 0)
	r := rec("runs", 0, 5)
	l.add(r)
	l.release(map[string][]int32{"runs": {0}})
	l.finish(r) // completes after the revoke
	if got := l.toCommit(); len(got) != 0 {
		t.Fatalf("committed %v for a partition this member no longer owns", got)
	}
	if _, ok, _ := l.add(rec("runs", 0, 6)); ok {
		t.Fatal("accepted a record of a partition not owned")
	}
	if _, ok := l.markStarted(r); ok {
		t.Fatal("marked a start on a partition not owned")
	}
	assignFresh(l, "runs", 0)
	if got := l.toCommit(); len(got) != 0 {
		t.Fatalf("reassigned partition commits %v before any work", got)
	}
}

func TestLedgerLag(t *testing.T) {
	l := newLedger()
	assignFresh(l, "runs", 2)
	l.setHighWater("runs", 2, 100)
	if _, ok := l.lags()[2]; ok {
		t.Fatal("lag reported before anything was consumed")
	}
	r := rec("runs", 2, 40)
	l.add(r)
	l.finish(r)
	if got := l.lags()[2]; got != 59 {
		t.Fatalf("lag = %d, want 59", got)
	}
}

func TestLedgerWaitFinished(t *testing.T) {
	l := newLedger()
	assignFresh(l, "runs", 0, 1)
	busy, left := rec("runs", 0, 1), rec("runs", 0, 2)
	l.add(busy)
	l.add(left)
	l.add(rec("runs", 1, 1)) // another partition: not waited for
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if l.waitFinished(ctx, map[string][]int32{"runs": {0}}) {
		t.Fatal("waitFinished returned true with runs still going")
	}
	done := make(chan bool)
	go func() { done <- l.waitFinished(context.Background(), map[string][]int32{"runs": {0}}) }()
	l.abandon(left) // left for the next owner: not waited for
	l.finish(busy)
	if !<-done {
		t.Fatal("waitFinished did not see the runs end")
	}
	if s := commitOf(t, l, "runs", 0); s.offset.Offset != 2 {
		t.Fatalf("commit passed an abandoned record: %+v", s)
	}
}

// TestLedgerRecommitsAfterAnUncertainCommit: a commit whose outcome is unknown may have
// reached the broker; the next commit must go out even if the ledger is back where it was
// (a start that was marked, sent, and then unmarked).
func TestLedgerRecommitsAfterAnUncertainCommit(t *testing.T) {
	l := newLedger()
	assignFresh(l, "runs", 0)
	r := rec("runs", 0, 0)
	l.add(r)
	tp := topicPartition{"runs", 0}
	before := commitOf(t, l, "runs", 0)
	l.committed(tp, before)
	m, _ := l.markStarted(r)
	sent := commitOf(t, l, "runs", 0) // carries s=0; its answer is lost
	if sent.meta == before.meta {
		t.Fatal("the start did not change the commit")
	}
	l.uncertain(tp)
	l.unmarkStarted(r, m) // the run will not start after all
	again, ok := l.toCommit()[tp]
	if !ok || again.meta != before.meta {
		t.Fatalf("after an uncertain commit, want the unmarked state committed again, got %+v (%v)", again, ok)
	}
	if covered, _ := l.committedVersion(tp, m); covered {
		t.Fatal("an uncertain commit counted the start as committed")
	}
}

// TestLedgerWindowPausesBehindALongRun: finished offsets behind an unfinished head fill the
// partition's window; at the limit the partition is paused, and it resumes once the head
// finishes. The ledger keeps offsets, never the records.
func TestLedgerWindowPausesBehindALongRun(t *testing.T) {
	l := newLedger()
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
		if l.finish(r) {
			t.Fatalf("finishing %d behind the head resumed the partition", off)
		}
	}
	if paused, _ := l.windowPaused(topicPartition{"runs", 0}); !paused {
		t.Fatal("not paused at the window limit")
	}
	if s := commitOf(t, l, "runs", 0); s.offset.Offset != 0 || s.meta != "port-runner/1 f=1-9" {
		t.Fatalf("commit %+v", s)
	}
	if _, ok, _ := l.add(rec("runs", 0, 5)); ok {
		t.Fatal("an offset polled again was registered twice")
	}
	if !l.finish(head) {
		t.Fatal("finishing the head did not resume the partition")
	}
	if s := commitOf(t, l, "runs", 0); s.offset.Offset != 10 || s.offset.Epoch != 7 || s.meta != "port-runner/1" {
		t.Fatalf("commit after the head %+v", s)
	}
}

// BenchmarkLedgerBehindALongRun: 20,000 records finish behind one unfinished head on one
// partition, then a commit snapshot: lookups stay O(log n), memory a few bytes per offset.
func BenchmarkLedgerBehindALongRun(b *testing.B) {
	for b.Loop() {
		l := newLedger()
		assignFresh(l, "runs", 0)
		l.add(rec("runs", 0, 0))
		for off := int64(1); off <= 20000; off++ {
			r := rec("runs", 0, off)
			l.add(r)
			l.finish(r)
		}
		l.toCommit()
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
	l := newLedger()
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
		if resumed := l.finish(r); resumed != (i == pauseOpenRuns/2-1) {
			t.Fatalf("finish %d of %d: resumed %v", i+1, pauseOpenRuns/2, resumed)
		}
	}
}

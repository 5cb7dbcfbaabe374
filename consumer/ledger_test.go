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

func TestLedgerCommitsOnlyUpToOldestUnfinished(t *testing.T) {
	l := newLedger()
	l.assign(map[string][]int32{"runs": {0, 1}})
	r := []*kgo.Record{rec("runs", 0, 10), rec("runs", 0, 11), rec("runs", 0, 12)}
	for _, x := range r {
		if !l.add(x) {
			t.Fatal("owned partition refused a record")
		}
	}
	if got := l.toCommit(); len(got) != 0 {
		t.Fatalf("nothing finished, yet commit %v", got)
	}
	l.finish(r[2]) // out of order: 12 before 10 and 11
	if got := l.toCommit(); len(got) != 0 {
		t.Fatalf("offset 10 unfinished, yet commit %v", got)
	}
	l.finish(r[0])
	if got := l.toCommit()["runs"][0]; got.Offset != 11 || got.Epoch != 7 {
		t.Fatalf("after 10 finished: commit %+v, want offset 11 epoch 7", got)
	}
	l.finish(r[1])
	if got := l.toCommit()["runs"][0]; got.Offset != 13 {
		t.Fatalf("after all finished: commit %+v, want 13", got)
	}
	l.committed("runs", 0, kgo.EpochOffset{Epoch: 7, Offset: 13})
	if got := l.toCommit(); len(got) != 0 {
		t.Fatalf("already committed, yet commit again %v", got)
	}
	if n := l.inflight(); n != 0 {
		t.Fatalf("inflight = %d", n)
	}
}

func TestLedgerDropsWorkOfPartitionsNoLongerOwned(t *testing.T) {
	l := newLedger()
	l.assign(map[string][]int32{"runs": {0}})
	r := rec("runs", 0, 5)
	l.add(r)
	l.release(map[string][]int32{"runs": {0}})
	l.finish(r) // completes after the revoke
	if got := l.toCommit(); len(got) != 0 {
		t.Fatalf("committed %v for a partition this member no longer owns", got)
	}
	if l.add(rec("runs", 0, 6)) {
		t.Fatal("accepted a record of a partition not owned")
	}
	// Owned again later: it starts afresh, the old completion is not remembered.
	l.assign(map[string][]int32{"runs": {0}})
	if got := l.toCommit(); len(got) != 0 {
		t.Fatalf("reassigned partition commits %v before any work", got)
	}
}

func TestLedgerLag(t *testing.T) {
	l := newLedger()
	l.assign(map[string][]int32{"runs": {2}})
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
	l.assign(map[string][]int32{"runs": {0, 1}})
	busy := rec("runs", 0, 1)
	l.add(busy)
	l.add(rec("runs", 1, 1)) // another partition: not waited for
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if l.waitFinished(ctx, map[string][]int32{"runs": {0}}) {
		t.Fatal("waitFinished returned true with a run still going")
	}
	done := make(chan bool)
	go func() { done <- l.waitFinished(context.Background(), map[string][]int32{"runs": {0}}) }()
	l.finish(busy)
	if !<-done {
		t.Fatal("waitFinished did not see the run finish")
	}
}

package consumer

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/port-runner/port-runner/executor"
)

// BenchmarkLedgerPerRun is the ledger's work for one quick run in a stream of them, as a
// replica does it with 16 runs in flight on a partition whose history is full: the record
// registered, its start marked (and checked to fit), the commit that carries the mark,
// its run id handled, and the run finished. "behind a long run": every 1,000th run lasts
// until the next one starts, so the commit's offset stays behind it, over a window of 500
// finished runs on average.
func BenchmarkLedgerPerRun(b *testing.B) {
	for _, c := range []struct {
		name      string
		longEvery int64
	}{{"quick runs", 0}, {"behind a long run", 1000}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			benchLedgerPerRun(b, c.longEvery)
		})
	}
}

func benchLedgerPerRun(b *testing.B, longEvery int64) {
	const inFlight = 16
	l := newLedger(5 * time.Minute)
	assignFresh(l, "runs", 0)
	ids := make([]string, 2*maxHistoryRuns)
	for i := range ids {
		ids[i] = fmt.Sprintf("r_%016x", i)
	}
	mine := Lease{Holder: "kgo-this-member-0123456789abcdef", Bound: 3 * time.Minute}
	now := time.Now()
	recs := map[int64]*kgo.Record{} // the runs in flight
	long := func(off int64) bool { return longEvery > 0 && off%longEvery == 0 }
	run := func(off int64) {
		r := rec("runs", 0, off)
		recs[off] = r
		pl := plOf(l, r)
		l.add(r)
		if _, err := l.markStarted(r, pl, mine); err != nil {
			b.Fatal(err)
		}
		for tp, s := range l.toCommit(nil) {
			l.committed(tp, s)
		}
		l.handled(pl, ids[off%int64(len(ids))], now)
		for _, done := range []int64{off - inFlight, off - longEvery} {
			if r, ok := recs[done]; ok && (done == off-longEvery) == long(done) {
				l.finish(r, pl)
				delete(recs, done)
			}
		}
	}
	off := int64(0)
	for ; off < maxHistoryRuns; off++ { // a full history
		run(off)
	}
	for b.Loop() {
		run(off)
		off++
	}
}

// BenchmarkTakeOnKfake: quick runs through a whole consumer on an in-process broker, 16 at
// a time: each record polled, handed to a handler that takes it (its start mark committed),
// records its run id and finishes it. Allocations count the broker's and the client's too;
// commits/op is how many commits the broker got per run.
func BenchmarkTakeOnKfake(b *testing.B) {
	b.ReportAllocs()
	kc := fakeCluster(b, 1)
	prod := producer(b, kc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for i := 0; i < b.N; i++ {
		prod.Produce(ctx, &kgo.Record{Topic: testTopic, Value: []byte("run")}, nil)
	}
	if err := prod.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	var commits atomic.Int64
	kc.ControlKey(kmsg.OffsetCommit.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		commits.Add(1)
		return nil, nil, false
	})
	c := newTestConsumer(b, kc, "g-bench", Options{Slots: executor.NewPool(16, nil), CommitEvery: time.Hour})
	var done atomic.Int64
	all := make(chan struct{})
	now := time.Now()
	b.ResetTimer()
	runReleasing(b, c, func(tk *Ticket) {
		if err := tk.Take(ctx); err != nil {
			b.Error(err)
		}
		tk.Handled(fmt.Sprintf("r_%016x", tk.Record.Offset), now)
		if done.Add(1) == int64(b.N)+1 { // fakeCluster's record, then b.N
			close(all)
		}
	})
	select {
	case <-all:
	case <-ctx.Done():
		b.Fatalf("%d of %d runs in 5m", done.Load(), b.N+1)
	}
	b.StopTimer()
	b.ReportMetric(float64(commits.Load())/float64(b.N), "commits/op")
}

// BenchmarkTakeCovered: a take whose start mark another take's commit carried already, as
// most are in a stream of quick runs (commits/op above): it must cost no commit, and no
// more than looking.
func BenchmarkTakeCovered(b *testing.B) {
	b.ReportAllocs()
	kc := fakeCluster(b, 1)
	c := newTestConsumer(b, kc, "g-bench", Options{CommitEvery: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tickets, done := make(chan *Ticket, 1), make(chan struct{})
	runReleasing(b, c, func(tk *Ticket) {
		if err := tk.Take(ctx); err != nil {
			b.Error(err)
		}
		tickets <- tk
		<-done
	})
	defer close(done)
	tk := <-tickets
	for b.Loop() {
		if err := tk.Take(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

package consumer

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/port-runner/port-runner/executor"
	"github.com/port-runner/port-runner/internal/waitcond"
)

// A replica's pool may be far larger than what one partition's commit metadata can carry:
// however many records wait on one partition and however many slots are free, the consumer
// hands that partition's handlers at most maxOpenRuns unfinished records at once (the
// fetch pauses, franz-go keeps the buffered records of a paused partition), and once they
// finish it goes on until every record is handled.
func TestAPartitionHoldsAtMostItsRunLimit(t *testing.T) {
	kc := fakeCluster(t, 1) // one record already
	prod := producer(t, kc)
	const more = 3 * maxOpenRuns
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	recs := make([]*kgo.Record, more)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: testTopic, Partition: 0, Value: []byte("run")}
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	c := newTestConsumer(t, kc, "g-open-runs", Options{Slots: executor.NewPool(1000, nil), MaxPoll: 1000})
	var holding, most, handled atomic.Int64
	gate := make(chan struct{})
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() {
		done <- c.Run(runCtx, context.Background(), func(_ context.Context, tk *Ticket) {
			n := holding.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			<-gate
			holding.Add(-1)
			tk.Release(true)
			if handled.Add(1) == more+1 {
				stop()
			}
		})
	}()
	// The ledger pauses the partition before the poll starts the handlers of the records it
	// took: wait for those handlers too, or a loaded machine opens the gate before they hold.
	waitcond.For(t, "the partition paused at its run limit, its handlers holding the records", 30*time.Second, func() bool {
		paused, _ := c.ledger.windowPaused(topicPartition{testTopic, 0})
		return paused && holding.Load() >= pauseOpenRuns
	})
	close(gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := handled.Load(); got != more+1 {
		t.Fatalf("handled %d records, want %d", got, more+1)
	}
	if m := most.Load(); m > maxOpenRuns || m < pauseOpenRuns {
		t.Fatalf("the partition's handlers held %d records at once, want %d-%d", m, pauseOpenRuns, maxOpenRuns)
	}
	t.Logf("at most %d records held at once (pause at %d, limit %d)", most.Load(), pauseOpenRuns, maxOpenRuns)
}

package consumer

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/port-runner/port-runner/executor"
	"github.com/port-runner/port-runner/internal/waitcond"
)

// Takes that come while a start mark's commit is under way leave together in the next one:
// each take waits for at most that commit and its own, and the broker gets two commits for
// eight takes, not eight.
func TestTakesDuringACommitLeaveTogether(t *testing.T) {
	const runs = 8
	kc := fakeCluster(t, 1) // offset 0: a record
	prod := producer(t, kc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range runs - 1 {
		if err := prod.ProduceSync(ctx, &kgo.Record{Topic: testTopic, Value: []byte("run")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	var counting atomic.Bool
	var commits atomic.Int32
	release := make(chan struct{})
	free := sync.OnceFunc(func() { close(release) })
	t.Cleanup(free) // before the consumer's own cleanup: a failed wait must not hang it
	kc.ControlKey(kmsg.OffsetCommit.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		if counting.Load() && commits.Add(1) == 1 {
			kc.SleepControl(func() { <-release }) // the first take's commit waits, the broker serves the rest
		}
		return nil, nil, false
	})
	c := newTestConsumer(t, kc, "g-takes", Options{CommitEvery: time.Hour, Slots: executor.NewPool(runs, nil)})
	taken := make(chan error, runs)
	counting.Store(true)
	runReleasing(t, c, func(tk *Ticket) { taken <- tk.Take(ctx) })
	waitcond.For(t, "every start marked while the first commit waits", 20*time.Second, func() bool {
		return startsMarked(c) == runs
	})
	free()
	for range runs {
		if err := <-taken; err != nil {
			t.Errorf("take: %v", err)
		}
	}
	if n := commits.Load(); n != 2 {
		t.Errorf("%d commits for %d takes, want 2: the first, then the rest together", n, runs)
	}
}

// startsMarked counts the runs c's ledger holds started by this member.
func startsMarked(c *Consumer) int {
	c.ledger.mu.Lock()
	defer c.ledger.mu.Unlock()
	n := 0
	for _, pl := range c.ledger.parts {
		for _, e := range pl.inflight {
			if e.started && e.ours {
				n++
			}
		}
	}
	return n
}

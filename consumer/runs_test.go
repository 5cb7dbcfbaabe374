package consumer

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// heldRuns is a Runs holding n runs of every partition until set says otherwise: the
// agent's lifecycle with a run being closed after its handler said "finished".
type heldRuns struct {
	mu      sync.Mutex
	n       int
	changed chan struct{}
}

func (h *heldRuns) Holding(string, int32) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

func (h *heldRuns) Changed() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.changed
}

func (h *heldRuns) set(n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n = n
	close(h.changed)
	h.changed = make(chan struct{})
}

// A revoke asks the runs, not only the ledger, whether a partition may go: while they hold
// a run of it, the partition is not released, even with every record finished.
func TestRevokeWaitsForTheRunsHeld(t *testing.T) {
	kc := fakeCluster(t, 2)
	group := "g-revoke-runs"
	runs := &heldRuns{changed: make(chan struct{})}
	waitedOut := make(chan struct{})
	var once sync.Once
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewDevelopmentEncoderConfig()), zapcore.AddSync(io.Discard), zapcore.DebugLevel),
		zap.Hooks(func(e zapcore.Entry) error {
			if e.Message == "runs of revoked partitions still going after the revoke wait; cancelling them" {
				once.Do(func() { close(waitedOut) })
			}
			return nil
		}))
	c := newTestConsumer(t, kc, group, Options{RevokeWait: 100 * time.Millisecond, StopWait: time.Minute, Logger: log, CommitEvery: time.Hour, Runs: runs})
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	handled := make(chan struct{}, 2)
	runErr := make(chan error, 1)
	go func() {
		runErr <- c.Run(ctx, context.Background(), func(context.Context, *Ticket) bool {
			runs.set(1) // a run is still being closed when its record is finished
			handled <- struct{}{}
			return true
		})
	}()
	<-handled
	<-handled

	// A second member takes one partition away.
	defer joinSecondMember(t, kc, group)()

	select {
	case <-waitedOut:
	case <-time.After(30 * time.Second):
		t.Fatal("the revoke never waited for the run the runs hold")
	}
	if !c.ledger.owns(testTopic, 0) || !c.ledger.owns(testTopic, 1) {
		t.Fatal("partition released while the runs still hold one of its runs")
	}
	runs.set(0) // closed in Port
	deadline := time.Now().Add(30 * time.Second)
	for c.ledger.owns(testTopic, 0) && c.ledger.owns(testTopic, 1) {
		if time.Now().After(deadline) {
			t.Fatal("partition not released once the runs held none of it")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
}

package consumer

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/port-runner/port-runner/internal/waitcond"
)

// sleepProbe is a context whose Done is first asked for when Take, having checked its
// start, waits before checking again (its commits go out without ctx's cancel).
type sleepProbe struct {
	context.Context
	once    sync.Once
	reached chan struct{}
}

func (p *sleepProbe) Done() <-chan struct{} {
	p.once.Do(func() { close(p.reached) })
	return p.Context.Done()
}

// TestTakeWaitsForItsHandoversVerdict: a Take recording its start as its partition is
// revoked, whose handover's commit was answered failed and is then read back leasing the
// run to this member. The partition is released before the read-back's verdict reaches the
// ticket: a Take that checks in between must wait for that verdict, not give the run up,
// for the group leases it to this member and its next owner waits for it.
func TestTakeWaitsForItsHandoversVerdict(t *testing.T) {
	kc := fakeCluster(t, 1)
	a := startMemberWith(t, kc, "g-verdict", Options{CommitEvery: time.Hour}, func(context.Context, *Ticket) {})
	tk := a.next(t)
	a.c.commitMu.Lock() // the Take's own commit waits behind the handover's
	probe := &sleepProbe{Context: context.Background(), reached: make(chan struct{})}
	taken := make(chan error, 1)
	go func() { taken <- tk.Take(probe) }()
	waitcond.For(t, "the start to be marked", 10*time.Second, func() bool { return startsMarked(a.c) == 1 })
	parts := map[string][]int32{testTopic: {0}}
	a.c.ledger.revoking(parts)
	pls := a.c.ledger.release(parts) // onRevoked: released, then the verdict (lose)
	a.c.commitMu.Unlock()
	select {
	case err := <-taken:
		t.Fatalf("Take returned %v between the release and the handover's verdict", err)
	case <-probe.reached:
	case <-time.After(30 * time.Second):
		t.Fatal("Take neither returned nor waited to check again")
	}
	tp := topicPartition{testTopic, 0}
	a.c.lose(pls, &handover{readBack: map[topicPartition]map[int64]bool{tp: {tk.Record.Offset: true}}}, false)
	if err := <-taken; err != nil {
		t.Fatalf("Take of a run the group leases to this member: %v", err)
	}
	// Held may say ErrFenced until the group watch first lists this member: it passes.
	waitcond.For(t, "the run held here under its lease", 30*time.Second, func() bool { return tk.Held() == nil && tk.HandedOver() })
}

// TestReadBackFailureSaysWhy: a read-back that does not go through says why, whichever way
// it failed: the error line that follows (the runs stop) carries no cause of its own. A
// read cut short by its deadline (here: by its context) said nothing.
func TestReadBackFailureSaysWhy(t *testing.T) {
	kc := fakeCluster(t, 1)
	core, logs := observer.New(zapcore.WarnLevel)
	c := newTestConsumer(t, kc, "g-read-back-why", Options{CommitEvery: time.Hour, Logger: zap.New(core)})
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tp := topicPartition{testTopic, 0}
	if _, unread := c.leasedTo(ctx, c.client(), map[topicPartition]bool{tp: true}, "A"); !unread[tp] {
		t.Fatalf("unread %v, want partition 0", unread)
	}
	for _, e := range logs.All() {
		if err, ok := e.ContextMap()["error"]; ok && strings.Contains(fmt.Sprint(err), context.Canceled.Error()) {
			return
		}
	}
	t.Fatalf("no line says why the read-back failed: %v", logs.All())
}

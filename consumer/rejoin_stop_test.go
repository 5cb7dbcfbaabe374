package consumer

import (
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/port-runner/port-runner/internal/waitcond"
)

// TestNoNewMemberWhenStoppedDuringARejoin: a replica asked to stop while it leaves the group under a fenced member id makes no new
// client (a new member joining the group only to leave it at once).
func TestNoNewMemberWhenStoppedDuringARejoin(t *testing.T) {
	kc := fakeCluster(t, 2)
	clients := &clientCount{}
	opts := fencedOpts("consumer")
	opts.ClientOpts = []kgo.Opt{kgo.WithHooks(clients)}
	p := leaseOneRun(t, kc, "g-stop-rejoin", opts)
	stopped := make(chan struct{})
	var once sync.Once
	var leaving = make(chan struct{})
	kc.ControlKey(kmsg.ConsumerGroupHeartbeat.Int16(), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		req := kr.(*kmsg.ConsumerGroupHeartbeatRequest)
		if req.MemberID == p.holder && req.MemberEpoch == -1 {
			once.Do(func() { close(leaving) })
			kc.SleepControl(func() { <-stopped })
		}
		return nil, nil, false
	})
	answerOneHeartbeat(kc, "consumer", p.holder, kerr.FencedMemberEpoch.Code)
	select {
	case <-leaving:
	case <-time.After(60 * time.Second):
		t.Fatal("A never left under its fenced id")
	}
	_, before := clients.counts()
	p.a.stop() // SIGTERM while the leave is under way
	close(stopped)
	waitcond.For(t, "A's poll to end (Run leaves the group)", 60*time.Second, p.a.c.members.isLeft)
	made, _ := clients.counts()
	t.Logf("clients made: %d (open at most %d before the stop)", made, before)
	if made != 2 {
		t.Errorf("%d clients made, want 2 (A's first, B's): A made a new member while stopping", made)
	}
}

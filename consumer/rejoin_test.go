package consumer

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/port-runner/port-runner/internal/waitcond"
)

// refuseRejoins makes kfake answer member id holder as a broker without KAFKA-19233 does: its
// first heartbeat past its join is refused with FENCED_MEMBER_EPOCH, and so is every rejoin
// under the same id (epoch 0) while the coordinator still has the member; once removed is
// set (its session ended), such a rejoin goes through and re-creates the member under that id.
func refuseRejoins(kc *kfake.Cluster, holder string, removed *atomic.Bool) (fenced *atomic.Bool) {
	fenced = new(atomic.Bool)
	kc.ControlKey(kmsg.ConsumerGroupHeartbeat.Int16(), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		req := kr.(*kmsg.ConsumerGroupHeartbeatRequest)
		if req.MemberID != holder {
			return nil, nil, false
		}
		switch {
		case req.MemberEpoch > 0 && fenced.CompareAndSwap(false, true):
		case req.MemberEpoch == 0 && fenced.Load() && !removed.Load():
		default:
			return nil, nil, false
		}
		resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
		resp.ErrorCode = kerr.FencedMemberEpoch.Code
		return resp, nil, true
	})
	return fenced
}

// TestAFencedKIP848MemberGivesItsLeasesUp: under KIP-848 a fenced member stops the run it
// held under a lease (a broker without KAFKA-19233 may drop and re-create it under the same
// id, unnoticed by it, while the run's waiters see it go), then leaves under that id and goes
// on under a new one: the run's new owner sees the id go and decides the run the lease's
// bound later, after the member stopped it, while the member keeps consuming.
func TestAFencedKIP848MemberGivesItsLeasesUp(t *testing.T) {
	for _, refused := range []bool{false, true} {
		name := map[bool]string{false: "rejoin-taken", true: "rejoin-refused"}[refused]
		t.Run(name, func(t *testing.T) {
			kc := fakeCluster(t, 2, kfake.BrokerConfigs(map[string]string{
				"group.consumer.session.timeout.ms": "3000", "group.consumer.heartbeat.interval.ms": "250"}))
			clients := &clientCount{}
			opts := fencedOpts("consumer")
			opts.ClientOpts = []kgo.Opt{kgo.WithHooks(clients)}
			p := leaseOneRun(t, kc, "g-fenced-kip848-"+name, opts)
			var removed atomic.Bool
			if refused {
				refuseRejoins(kc, p.holder, &removed)
			} else {
				answerOneHeartbeat(kc, "consumer", p.holder, kerr.FencedMemberEpoch.Code)
			}
			waitDecidedAfterStop(t, p, func() {
				if p.b.c.members.absentFor(p.holder) {
					removed.Store(true) // the coordinator dropped it: a join under its id re-creates it
				}
			})
			checkGoesOn(t, kc, p)
			if made, most := clients.counts(); made != 3 || most != 2 {
				t.Fatalf("%d clients made, at most %d open at once; want A's second made once its first closed (3, 2)", made, most)
			}
		})
	}
}

// checkGoesOn checks that A, still running, consumes under a new member id: a run produced
// on a partition it owns now is handed to it and taken there, and to no member as new again.
func checkGoesOn(t *testing.T, kc *kfake.Cluster, p leasedPair) {
	t.Helper()
	var part int32 = -1
	waitcond.For(t, "A to own a partition under a new member id", 30*time.Second, func() bool {
		if id := p.a.c.memberID(); id == "" || id == p.holder || !p.a.c.Joined() {
			return false
		}
		for pt := range p.a.c.Unstarted() {
			part = pt
			return true
		}
		return false
	})
	select {
	case err := <-p.a.done:
		t.Fatalf("A's Run returned %v", err)
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := producer(t, kc).ProduceSync(ctx, &kgo.Record{Topic: testTopic, Partition: part, Value: []byte("run-2")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var got *Ticket
	waitcond.For(t, "A to be handed the new run", 30*time.Second, func() bool {
		got = nextValued(p.a, "run-2")
		return got != nil
	})
	if l := got.Learned(); l.Prior == PriorStarted || l.Prior == PriorLeased {
		t.Fatalf("A learned %+v of the new run, want it new", l)
	}
	waitcond.For(t, "A to hold the new run", 30*time.Second, func() bool { return got.Held() == nil })
	for _, m := range []*member{p.a, p.b} {
		if again := nextValued(m, "run-2"); again != nil && again.Learned().Prior != PriorStarted && again.Learned().Prior != PriorLeased {
			t.Fatalf("the new run handed out as new a second time (%+v)", again.Learned())
		}
	}
}

// nextValued returns the first ticket m was handed, of those not read yet, whose record holds
// value, without waiting; nil if none.
func nextValued(m *member, value string) *Ticket {
	for {
		select {
		case tk := <-m.tickets:
			if string(tk.Record.Value) == value {
				return tk
			}
		default:
			return nil
		}
	}
}

// clientCount counts the clients its hooks see made and open: a client's hooks (kprom's
// metrics) may serve one client at a time.
type clientCount struct {
	mu               sync.Mutex
	made, open, most int
}

func (c *clientCount) OnNewClient(*kgo.Client) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.made++
	c.open++
	c.most = max(c.most, c.open)
}

func (c *clientCount) OnClientClosed(*kgo.Client) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.open--
}

// counts is how many clients were made, and how many were open at once at most.
func (c *clientCount) counts() (made, most int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.made, c.most
}

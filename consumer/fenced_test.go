package consumer

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/port-runner/port-runner/internal/clock"
	"github.com/port-runner/port-runner/internal/waitcond"
)

// leasedPair is member A holding a run under its lease after a handover, and member B, the
// partition's new owner, waiting for that lease.
type leasedPair struct {
	a, b    *member
	aLogs   *observer.ObservedLogs
	holder  string  // A's member id when it handed the partition over
	leased  *Ticket // A's run, leased to it
	learned Learned // what B learned of that run
}

// leaseOneRun starts A, which takes a run on each of kc's two partitions, then B, which gets
// one partition and learns its run is leased to A.
func leaseOneRun(t *testing.T, kc *kfake.Cluster, group string, opts Options) leasedPair {
	t.Helper()
	core, logs := observer.New(zapcore.InfoLevel)
	aOpts := opts
	aOpts.Logger = zap.New(core)
	a := startMember(t, kc, group, aOpts, true)
	held := map[int32]*Ticket{}
	for range 2 {
		tk := a.next(t)
		held[tk.Record.Partition] = tk
	}
	holder := a.c.memberID()
	b := startMember(t, kc, group, opts, false)
	inherited := b.next(t)
	l := inherited.Learned()
	if l.Prior != PriorLeased || l.Lease.Holder != holder {
		t.Fatalf("B learned %+v, want the run leased to A (%s)", l, holder)
	}
	return leasedPair{a: a, b: b, aLogs: logs, holder: holder, leased: held[inherited.Record.Partition], learned: l}
}

// answerOneHeartbeat answers the first heartbeat of member id holder (past its join) with
// code, as the coordinator would; it reports whether it has.
func answerOneHeartbeat(kc *kfake.Cluster, protocol, holder string, code int16) *atomic.Bool {
	var done atomic.Bool
	if protocol == "consumer" {
		kc.ControlKey(kmsg.ConsumerGroupHeartbeat.Int16(), func(kr kmsg.Request) (kmsg.Response, error, bool) {
			kc.KeepControl()
			req := kr.(*kmsg.ConsumerGroupHeartbeatRequest)
			if req.MemberID != holder || req.MemberEpoch <= 0 || !done.CompareAndSwap(false, true) {
				return nil, nil, false
			}
			resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
			resp.ErrorCode = code
			return resp, nil, true
		})
		return &done
	}
	kc.ControlKey(kmsg.Heartbeat.Int16(), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		req := kr.(*kmsg.HeartbeatRequest)
		if req.MemberID != holder || !done.CompareAndSwap(false, true) {
			return nil, nil, false
		}
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = code
		return resp, nil, true
	})
	return &done
}

// listedSince says whether an answer sent at or after at listed member id.
func (m *members) listedSince(id string, at clock.Instant) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.listedAt[id]
	return ok && !l.Before(at)
}

// TestAFencedClassicMemberHoldsItsLeasesStill: a heartbeat refused with ILLEGAL_GENERATION
// comes from a coordinator that still lists the member, which loses its partitions and
// rejoins under the same id. The run it holds under a lease goes on: the new owner of its
// partition, waiting for that lease, never saw the holder go, and hears of it once the
// holder leaves the group. (Giving the run up there left it open in Port, waited for by
// nobody who would ever decide it.)
func TestAFencedClassicMemberHoldsItsLeasesStill(t *testing.T) {
	p := fencedOnce(t, "classic", kerr.IllegalGeneration.Code)
	if err := p.leased.Held(); err != nil || p.leased.Stopped().Err() != nil {
		t.Fatalf("A's leased run after the loss: held %v, stopped %v; want it going on", err, context.Cause(p.leased.Stopped()))
	}
	if isClosed(p.learned.Ended) {
		t.Fatal("B's wait for A's lease ended while A is listed and runs the run")
	}
	p.a.stop() // A leaves: B hears of it the lease's bound later
	waitcond.For(t, "B's wait for A's lease to end", 60*time.Second, func() bool { return isClosed(p.learned.Ended) })
}

// fencedOnce leases a run to A, has one of A's heartbeats refused with code, and waits until
// A lost its partitions, was listed again by an answer sent after that, and its watch has
// applied that answer, under the member id it had.
func fencedOnce(t *testing.T, protocol string, code int16) leasedPair {
	t.Helper()
	kc := fakeCluster(t, 2)
	p := leaseOneRun(t, kc, "g-fenced-"+protocol, fencedOpts(protocol))
	answered := answerOneHeartbeat(kc, protocol, p.holder, code)
	waitcond.For(t, "A to lose its partitions", 30*time.Second, func() bool {
		return answered.Load() && p.aLogs.FilterMessage("partitions lost").Len() > 0
	})
	lostAt := clock.Now()
	waitcond.For(t, "A listed again since", 30*time.Second, func() bool { return p.a.c.members.listedSince(p.holder, lostAt) })
	checked := clock.Now() // the watch has applied that answer to the tickets by its next one
	waitcond.For(t, "the next answer", 30*time.Second, func() bool { return p.a.c.members.listedSince(p.holder, checked) })
	if id := p.a.c.memberID(); id != p.holder {
		t.Fatalf("A rejoined as %s, not under its id %s", id, p.holder)
	}
	return p
}

// fencedOpts are the timings of the fenced-member tests: a lease's bound of 8s.
func fencedOpts(protocol string) Options {
	return Options{GroupProtocol: protocol, CommitEvery: time.Hour,
		Drain: 5 * time.Second, LeaseMargin: time.Second, Fence: 2 * time.Second, SessionTimeout: 3 * time.Second}
}

// silenceHeartbeats answers member id holder's heartbeats while on is true as if they were
// heard, without the coordinator hearing them: its session there runs out.
func silenceHeartbeats(kc *kfake.Cluster, protocol, holder string, on *atomic.Bool) {
	if protocol == "consumer" {
		kc.ControlKey(kmsg.ConsumerGroupHeartbeat.Int16(), func(kr kmsg.Request) (kmsg.Response, error, bool) {
			kc.KeepControl()
			req := kr.(*kmsg.ConsumerGroupHeartbeatRequest)
			if req.MemberID != holder || req.MemberEpoch <= 0 || !on.Load() {
				return nil, nil, false
			}
			resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
			resp.MemberID, resp.MemberEpoch, resp.HeartbeatIntervalMillis = &req.MemberID, req.MemberEpoch, 250
			return resp, nil, true
		})
		return
	}
	kc.ControlKey(kmsg.Heartbeat.Int16(), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		req := kr.(*kmsg.HeartbeatRequest)
		if req.MemberID != holder || !on.Load() {
			return nil, nil, false
		}
		return req.ResponseKind(), nil, true
	})
}

// absentFor says whether this member saw member id go from the group.
func (m *members) absentFor(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.absent[id]
	return ok
}

// TestAForgottenMemberGivesItsLeasesUp: a member whose session ran out (frozen, cut off from
// the coordinator's heartbeats) is dropped from the group, and rejoins under a new id
// (UNKNOWN_MEMBER_ID). Once it sees its old id gone it stops the run it held under it
// (ErrNotOwned), and the new owner of the run's partition decides it the lease's bound
// after it saw the id go, not before.
func TestAForgottenMemberGivesItsLeasesUp(t *testing.T) {
	for _, protocol := range []string{"consumer", "classic"} {
		t.Run(protocol, func(t *testing.T) {
			kc := fakeCluster(t, 2, kfake.BrokerConfigs(map[string]string{
				"group.consumer.session.timeout.ms": "3000", "group.consumer.heartbeat.interval.ms": "250"}))
			p := leaseOneRun(t, kc, "g-forgotten-"+protocol, Options{GroupProtocol: protocol, CommitEvery: time.Hour,
				Drain: 5 * time.Second, LeaseMargin: time.Second, Fence: 2 * time.Second, SessionTimeout: 3 * time.Second})
			var silent atomic.Bool
			silenceHeartbeats(kc, protocol, p.holder, &silent)
			silent.Store(true)
			waitcond.For(t, "B to see A's session run out", 30*time.Second, func() bool { return p.b.c.members.absentFor(p.holder) })
			silent.Store(false)
			waitcond.For(t, "A to rejoin under a new id", 30*time.Second, func() bool {
				id := p.a.c.memberID()
				return id != "" && id != p.holder
			})
			waitDecidedAfterStop(t, p, func() {})
		})
	}
}

// waitDecidedAfterStop waits for B's wait for A's lease to end, and fails if A had not
// stopped the run by then; look runs before each look.
func waitDecidedAfterStop(t *testing.T, p leasedPair, look func()) {
	t.Helper()
	var stoppedFirst bool
	waitcond.For(t, "B's wait for A's lease to end", 60*time.Second, func() bool {
		look()
		stopped := errors.Is(context.Cause(p.leased.Stopped()), ErrNotOwned)
		if isClosed(p.learned.Ended) {
			stoppedFirst = stopped
			return true
		}
		return false
	})
	if !stoppedFirst {
		t.Fatalf("B may decide the run while A still runs it: A's run stopped %v", context.Cause(p.leased.Stopped()))
	}
}

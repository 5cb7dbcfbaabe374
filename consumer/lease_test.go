package consumer

import (
	"context"
	"errors"
	"strings"

	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/port-runner/port-runner/executor"
	"github.com/port-runner/port-runner/internal/clock"
	"github.com/port-runner/port-runner/internal/waitcond"
)

// member is a Consumer run in the background; every ticket it gets is sent on tickets and
// held (its handler blocks) until the test ends.
type member struct {
	c       *Consumer
	tickets chan *Ticket
	stop    context.CancelFunc
	done    chan error
}

func startMember(t *testing.T, kc *kfake.Cluster, group string, opts Options, take bool) *member {
	t.Helper()
	return startMemberWith(t, kc, group, opts, func(hctx context.Context, tk *Ticket) {
		// As the agent, it starts no run an earlier holder may have started.
		if prior := tk.Learned().Prior; take && prior != PriorStarted && prior != PriorLeased {
			if err := tk.Take(hctx); err != nil {
				t.Errorf("take %d: %v", tk.Record.Partition, err)
			}
		}
	})
}

// startMemberWith is a member whose handler calls first on each ticket, then sends it on
// tickets and holds it until the test ends.
func startMemberWith(t *testing.T, kc *kfake.Cluster, group string, opts Options, first func(context.Context, *Ticket)) *member {
	t.Helper()
	m := &member{c: newTestConsumer(t, kc, group, opts), tickets: make(chan *Ticket, 16), done: make(chan error, 1)}
	ctx, stop := context.WithCancel(context.Background())
	work, endWork := context.WithCancel(context.Background())
	m.stop = stop
	go func() {
		m.done <- m.c.Run(ctx, work, func(hctx context.Context, tk *Ticket) {
			first(hctx, tk)
			m.tickets <- tk
			<-hctx.Done()
		})
	}()
	t.Cleanup(func() {
		stop()
		endWork()
		<-m.done
	})
	return m
}

func (m *member) next(t *testing.T) *Ticket {
	t.Helper()
	select {
	case tk := <-m.tickets:
		return tk
	case <-time.After(30 * time.Second):
		t.Fatal("no record handed to the member")
		return nil
	}
}

// TestRevokeHandsOverAtOnceUnderLease: a member that joins takes a partition at once, though
// the run taken on it goes on: the revoke does not wait for it, does not stop it, and its
// commit leases it to the member that runs it, so the new owner keeps its hands off.
func TestRevokeHandsOverAtOnceUnderLease(t *testing.T) {
	for _, protocol := range []string{"classic", "consumer"} {
		t.Run(protocol, func(t *testing.T) {
			kc := fakeCluster(t, 2)
			group := "g-handover-" + protocol
			a := startMember(t, kc, group, Options{GroupProtocol: protocol, CommitEvery: time.Hour, Drain: time.Hour}, true)
			held := map[int32]*Ticket{}
			for range 2 {
				tk := a.next(t)
				held[tk.Record.Partition] = tk
			}
			holder := a.c.memberID()
			var second []kgo.Opt
			if protocol == "consumer" {
				second = []kgo.Opt{kgo.Balancers(kgo.CooperativeStickyBalancer()), kgo.ServerSideBalancer()}
			}
			defer joinSecondMember(t, kc, group, second...)()
			var moved int32 = -1
			waitcond.For(t, "a partition handed over", 30*time.Second, func() bool {
				for p := range held {
					if !a.c.ledger.owns(testTopic, p) {
						moved = p
						return true
					}
				}
				return false
			})
			tk := held[moved]
			if err := tk.Held(); err != nil || tk.Stopped().Err() != nil {
				t.Fatalf("the run of the handed-over partition: held %v, stopped %v; want it going on", err, context.Cause(tk.Stopped()))
			}
			_, meta := committedMeta(t, kc, group, moved)
			if !strings.Contains(meta, " s=0 o=0 h=") || !strings.Contains(meta, string(appendEscapedMember(nil, holder))) {
				t.Fatalf("handover committed %q: want offset 0 leased to %s", meta, holder)
			}
			got, ok, err := decodeProgress(0, meta)
			if l := got.leases[0]; !ok || err != nil || l.Holder != holder || l.Bound != a.c.leaseBound() || l.Bound < time.Hour {
				t.Fatalf("lease read back: %+v (%v, %v)", l, ok, err)
			}
			// Should this member lose its partitions now: under classic, its leases rest on its
			// id being listed, go on, and end once an answer leaves the id out; under KIP-848
			// they end at once.
			a.c.onLost(context.Background(), nil, map[string][]int32{})
			if protocol == "classic" {
				if err := tk.Held(); err != nil || tk.Stopped().Err() != nil {
					t.Fatalf("a leased run after the partitions were lost: held %v, stopped %v", err, context.Cause(tk.Stopped()))
				}
				a.c.members.observe(clock.Now(), []string{"someone-else"}, holder, nil)
				a.c.checkTickets()
			}
			if !errors.Is(context.Cause(tk.Stopped()), ErrNotOwned) || !errors.Is(tk.Held(), ErrNotOwned) {
				t.Fatalf("a leased run once its holder's id was gone: stopped %v, held %v", context.Cause(tk.Stopped()), tk.Held())
			}
		})
	}
}

// TestHandoverThatCannotBeCommittedStopsTheRuns: if the broker refuses the handover's
// commit, the new owner cannot know of the lease: the run stops here for good.
func TestHandoverThatCannotBeCommittedStopsTheRuns(t *testing.T) {
	kc := fakeCluster(t, 2)
	var failing atomic.Bool
	var refused atomic.Int32
	failCommits(kc, &failing, &refused, nil)
	a := startMember(t, kc, "g-handover-refused", Options{CommitEvery: time.Hour}, true)
	tks := []*Ticket{a.next(t), a.next(t)}
	failing.Store(true)
	defer joinSecondMember(t, kc, "g-handover-refused")()
	waitcond.For(t, "a run stopped", 30*time.Second, func() bool {
		for _, tk := range tks {
			if errors.Is(context.Cause(tk.Stopped()), ErrNotOwned) && errors.Is(tk.Held(), ErrNotOwned) {
				return true
			}
		}
		return false
	})
}

// TestLostPartitionsRunsStopForGood: a member that lost a partition (not revoked: another
// may own it already) stops its runs and may never act on them again.
func TestLostPartitionsRunsStopForGood(t *testing.T) {
	kc := fakeCluster(t, 1)
	a := startMember(t, kc, "g-lost", Options{CommitEvery: time.Hour}, true)
	tk := a.next(t)
	a.c.onLost(context.Background(), nil, map[string][]int32{testTopic: {0}})
	if !errors.Is(context.Cause(tk.Stopped()), ErrNotOwned) || !errors.Is(tk.Held(), ErrNotOwned) {
		t.Fatalf("after the loss: stopped %v, held %v; want ErrNotOwned", context.Cause(tk.Stopped()), tk.Held())
	}
}

// refuseDescribes makes the coordinator refuse to describe the group while on is true.
func refuseDescribes(kc *kfake.Cluster, on *atomic.Bool) {
	kc.ControlKey(kmsg.DescribeGroups.Int16(), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		if !on.Load() {
			return nil, nil, false
		}
		req := kr.(*kmsg.DescribeGroupsRequest)
		resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
		for _, g := range req.Groups {
			rg := kmsg.NewDescribeGroupsResponseGroup()
			rg.Group, rg.ErrorCode = g, kerr.CoordinatorNotAvailable.Code
			resp.Groups = append(resp.Groups, rg)
		}
		return resp, nil, true
	})
}

// TestFenceStopsRunsThatCannotBeConfirmed: a member that cannot confirm its membership for
// half the fence stops its runs (and renews none); confirmed again, it may act on them
// (close them) again, but what was stopped stays stopped.
func TestFenceStopsRunsThatCannotBeConfirmed(t *testing.T) {
	kc := fakeCluster(t, 1)
	var refusing atomic.Bool
	refuseDescribes(kc, &refusing)
	a := startMember(t, kc, "g-fence", Options{CommitEvery: time.Hour, SessionTimeout: 6 * time.Second, Fence: 2 * time.Second}, true)
	tk := a.next(t)
	waitcond.For(t, "membership confirmed", 10*time.Second, func() bool { return tk.Held() == nil })
	refusing.Store(true)
	waitcond.For(t, "the fence to stop the run", 20*time.Second, func() bool {
		return errors.Is(context.Cause(tk.Stopped()), ErrFenced)
	})
	if err := tk.Held(); !errors.Is(err, ErrFenced) {
		t.Fatalf("held while fenced: %v", err)
	}
	refusing.Store(false)
	waitcond.For(t, "confirmed again", 20*time.Second, func() bool { return tk.Held() == nil })
}

// TestLeaseEndsOnceItsHolderLeftForItsBound: a member that drains leaves the group at once;
// the partition's new owner learns the run is leased to it, and that the lease ends only
// once the holder has been gone for its bound, during which the holder may still act on it.
func TestLeaseEndsOnceItsHolderLeftForItsBound(t *testing.T) {
	kc := fakeCluster(t, 1)
	group := "g-lease-bound"
	const bound = 3 * time.Second // the drain, the fence and the margin
	opts := Options{CommitEvery: time.Hour, Drain: time.Second, LeaseMargin: time.Second, Fence: time.Second}
	a := startMember(t, kc, group, opts, true)
	held := a.next(t)
	holder := a.c.memberID()
	b := startMember(t, kc, group, opts, false)
	left := clock.Now()
	a.stop() // SIGTERM: leave at once; the run goes on under the lease
	inherited := b.next(t)
	l := inherited.Learned()
	if l.Prior != PriorLeased || l.Lease.Holder != holder || l.Lease.Bound != bound {
		t.Fatalf("new owner learned %+v, want leased to %s for %s", l, holder, bound)
	}
	if err := held.Held(); err != nil {
		t.Fatalf("the holder may no longer act on its run right after leaving: %v", err)
	}
	select {
	case <-l.Ended:
		t.Fatalf("lease ended %s after its holder left, before its bound %s", clock.Since(left), bound)
	case <-time.After(100 * time.Millisecond):
	}
	waitcond.For(t, "the lease to end", 30*time.Second, func() bool { return isClosed(l.Ended) })
	if since := clock.Since(left); since < bound {
		t.Fatalf("lease ended %s after its holder left, before its bound %s", since, bound)
	}
	if err := held.Held(); !errors.Is(err, ErrLeaseEnded) {
		t.Fatalf("the holder still holds its run after its bound: %v", err)
	}
}

// TestDrainedLeaseLastsTheDrain: a member's leases rest on its confirmed membership (Lasts
// 0) until it leaves the group with its runs leased in the handover's commit: from then on
// each lasts the rest of its drain whatever becomes of the member (Lasting closes at once),
// and a run whose handover the broker refused lasts nothing.
func TestDrainedLeaseLastsTheDrain(t *testing.T) {
	const drain = time.Hour
	for _, refuse := range []bool{false, true} {
		t.Run(map[bool]string{false: "committed", true: "refused"}[refuse], func(t *testing.T) {
			kc := fakeCluster(t, 1)
			var failing atomic.Bool
			var refused atomic.Int32
			failCommits(kc, &failing, &refused, nil)
			a := startMember(t, kc, "g-lasting", Options{CommitEvery: time.Hour, Drain: drain}, true)
			tk := a.next(t)
			if d := tk.Lasts(); d != 0 || isClosed(tk.Lasting()) {
				t.Fatalf("a member's lease lasts %s (closed: %v) before it left, want 0", d, isClosed(tk.Lasting()))
			}
			failing.Store(refuse)
			left := clock.Now()
			a.stop() // SIGTERM: leave at once
			if refuse {
				waitcond.For(t, "the run to stop", 60*time.Second, func() bool { return tk.Held() != nil })
				if d := tk.Lasts(); d != 0 || isClosed(tk.Lasting()) {
					t.Fatalf("a run whose handover was refused lasts %s (closed: %v), want 0", d, isClosed(tk.Lasting()))
				}
				return
			}
			waitcond.For(t, "the lease to last", 30*time.Second, func() bool { return isClosed(tk.Lasting()) })
			if d := tk.Lasts(); d <= 0 || d > drain-clock.Since(left)+time.Second || d < drain-clock.Since(left)-time.Minute {
				t.Fatalf("a drained member's lease lasts %s, want the rest of its drain of %s", d, drain)
			}
			if err := tk.Held(); err != nil {
				t.Fatalf("a drained member's run: %v", err)
			}
		})
	}
}

// TestUnleasedStartWaitsForTheFence: a run an earlier owner started and never leased (it
// crashed or lost the partition) is another's until the fence has passed since this member
// got the partition: by then the earlier owner's commands are dead.
func TestUnleasedStartWaitsForTheFence(t *testing.T) {
	kc := fakeCluster(t, 1)
	group := "g-unleased"
	plant(t, kc, group, metaPrefix+" s=0")
	const fence = 2 * time.Second
	a := startMember(t, kc, group, Options{CommitEvery: time.Hour, SessionTimeout: 3 * time.Second, Fence: fence}, false)
	tk := a.next(t)
	l := tk.Learned()
	if l.Prior != PriorStarted || l.Ended == nil {
		t.Fatalf("learned %+v, want started before, with an end to wait for", l)
	}
	waitcond.For(t, "the fence to pass", 30*time.Second, func() bool { return isClosed(l.Ended) })
	if since := clock.Since(tk.pl.since); since < fence {
		t.Fatalf("the wait ended %s after the partition was assigned, before the fence %s", since, fence)
	}
}

// TestParkedTicketsGiveTheirPlaceBack: runs that wait for another replica's lease, which may
// last hours, do not hold the pool's places: with room for two records, a third is polled
// while two wait parked.
func TestParkedTicketsGiveTheirPlaceBack(t *testing.T) {
	kc := fakeCluster(t, 3)
	pool := executor.NewPool(1, nil) // room for 2 records
	// One place per poll: the poll waiting for a fourth record holds at most one, however
	// the parks and its reservations interleave.
	c := newTestConsumer(t, kc, "g-park", Options{CommitEvery: time.Hour, Slots: pool, MaxPoll: 1})
	got := make(chan *Ticket, 3)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- c.Run(ctx, context.Background(), func(hctx context.Context, tk *Ticket) {
			tk.Park()
			got <- tk
			<-ctx.Done()
		})
	}()
	defer func() { stop(); <-done }()
	for n := range 3 {
		select {
		case <-got:
		case <-time.After(30 * time.Second):
			t.Fatalf("%d records handed over while the others waited parked, want 3", n)
		}
	}
	if n := pool.Admitted(); n > 1 { // the poll waiting for a fourth record holds one
		t.Fatalf("%d places held while every ticket is parked", n)
	}
}

// TestActingEndsWithTheHold: a request acting on a run (its closing) carries a context that
// ends when the member may no longer act on the run: once an answer leaves its member id
// out, and, for a member that left the group, when its drain ends; so no closing is sent or
// retried after another member may act on the run.
func TestActingEndsWithTheHold(t *testing.T) {
	kc := fakeCluster(t, 2)
	a := startMember(t, kc, "g-acting", Options{CommitEvery: time.Hour, Drain: 5 * time.Second}, true)
	tk, _ := a.next(t), a.next(t)
	waitcond.For(t, "membership confirmed", 10*time.Second, func() bool { return tk.Held() == nil })
	gone, doneGone := tk.Acting(context.Background())
	defer doneGone()
	kept, doneKept := tk.Acting(context.Background())
	doneKept()
	if gone.Err() != nil || !errors.Is(context.Cause(kept), context.Canceled) {
		t.Fatalf("acting while held: %v; ended by its caller: %v", context.Cause(gone), context.Cause(kept))
	}
	holder := a.c.memberID()
	a.c.members.observe(clock.Now(), []string{"someone-else"}, holder, nil)
	a.c.checkTickets()
	if !errors.Is(context.Cause(gone), ErrNotOwned) {
		t.Fatalf("acting once the holder's id was gone: %v, want ErrNotOwned", context.Cause(gone))
	}

	b := startMember(t, kc, "g-acting-drain", Options{CommitEvery: time.Hour, Drain: 5 * time.Second}, true)
	run, _ := b.next(t), b.next(t)
	b.stop() // b leaves the group: its runs are leased to it for its drain
	waitcond.For(t, "the run's lease to last", 30*time.Second, func() bool { return run.Lasts() > 0 })
	drained, doneDrained := run.Acting(context.Background())
	defer doneDrained()
	waitcond.For(t, "the drain's end to end acting", 30*time.Second, func() bool { return drained.Err() != nil })
	if !errors.Is(context.Cause(drained), ErrLeaseEnded) || run.Lasts() > 0 {
		t.Fatalf("acting past the drain: %v (lasts %s), want ErrLeaseEnded", context.Cause(drained), run.Lasts())
	}
}

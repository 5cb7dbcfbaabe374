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

	"github.com/port-runner/port-runner/internal/kfaketest"
	"github.com/port-runner/port-runner/internal/waitcond"
)

// handoverUnder is a handover whose commits the broker answers as failed: A takes a run on
// each of kc's two partitions (or, taking false, is still committing both starts when the
// revoke begins), then B joins and gets one partition. during switches the broker's faults
// on before B joins; they are switched off once A has released the partition and read
// what it needed.
type handoverUnder struct {
	a, b     *member
	aLogs    *observer.ObservedLogs
	holder   string
	moved    *Ticket // A's run on the partition B got
	learned  Learned // what B learned of it
	takeErrs chan error
}

func handOverUnder(t *testing.T, kc *kfake.Cluster, group, protocol string, taken bool, during *atomic.Bool, settled func() bool) handoverUnder {
	t.Helper()
	core, logs := observer.New(zapcore.InfoLevel)
	opts := Options{GroupProtocol: protocol, CommitEvery: time.Hour}
	aOpts := opts
	aOpts.Logger = zap.New(core)
	h := handoverUnder{aLogs: logs, takeErrs: make(chan error, 2)}
	if !taken {
		during.Store(true) // the starts' commits are answered failed too: Take goes on trying
	}
	h.a = startTakingMember(t, kc, group, aOpts, h.takeErrs)
	waitcond.For(t, "A to own both partitions", 30*time.Second, func() bool { return len(h.a.c.ledger.owned()[testTopic]) == 2 })
	if !taken {
		waitcond.For(t, "A to be taking a run on each partition", 30*time.Second, func() bool { return startsMarked(h.a.c) == 2 })
	}
	h.holder = h.a.c.memberID()
	var held map[int32]*Ticket
	if taken {
		held = map[int32]*Ticket{}
		for range 2 {
			tk := h.a.next(t)
			held[tk.Record.Partition] = tk
		}
		during.Store(true)
	}
	h.b = startMember(t, kc, group, opts, false)
	var moved int32 = -1
	waitcond.For(t, "A to release a partition", 60*time.Second, func() bool {
		for _, p := range []int32{0, 1} {
			if !h.a.c.ledger.owns(testTopic, p) {
				moved = p
				return true
			}
		}
		return false
	})
	waitcond.For(t, "the broker's faults to have answered", 30*time.Second, settled)
	during.Store(false)
	inherited := h.b.next(t)
	if inherited.Record.Partition != moved {
		t.Fatalf("B got partition %d, A released %d", inherited.Record.Partition, moved)
	}
	h.learned = inherited.Learned()
	if !taken {
		for range 2 {
			tk := h.a.next(t)
			if held == nil {
				held = map[int32]*Ticket{}
			}
			held[tk.Record.Partition] = tk
		}
	}
	h.moved = held[moved]
	return h
}

// startTakingMember is startMember whose every ticket is taken, the take's error sent on
// errs; the ticket is sent on once its take returned, whatever it returned.
func startTakingMember(t *testing.T, kc *kfake.Cluster, group string, opts Options, errs chan error) *member {
	t.Helper()
	return startMemberWith(t, kc, group, opts, func(hctx context.Context, tk *Ticket) { errs <- tk.Take(hctx) })
}

// TestHandoverAppliedButAnsweredFailedGoesOn: the broker applies the handover's commit but
// answers every try failed. What the new owner reads leases the run to A, so A reads back
// what the group holds, finds it there, and its run goes on under its lease as if the
// commit had been answered: otherwise nobody would ever close it (README "Delivery"). A
// run still being taken as the revoke began is covered the same way.
func TestHandoverAppliedButAnsweredFailedGoesOn(t *testing.T) {
	for _, protocol := range []string{"classic", "consumer"} {
		for _, taken := range []bool{true, false} {
			t.Run(protocol+map[bool]string{true: "/taken", false: "/taking"}[taken], func(t *testing.T) {
				kc := fakeCluster(t, 2)
				var failing atomic.Bool
				answered := kfaketest.CommitsAppliedButFailed(kc, &failing)
				h := handOverUnder(t, kc, "g-applied", protocol, taken, &failing, func() bool { return answered.Hits() >= 3 })
				if h.learned.Prior != PriorLeased || h.learned.Lease.Holder != h.holder {
					t.Fatalf("B learned %+v: the broker did not apply the handover's lease to %s", h.learned, h.holder)
				}
				for range 2 {
					if err := <-h.takeErrs; err != nil {
						t.Errorf("A's take: %v", err)
					}
				}
				if err := h.moved.Held(); err != nil || h.moved.Stopped().Err() != nil || !h.moved.HandedOver() {
					t.Fatalf("A's run the group leases to it: held %v, stopped %v, handed over %v; want it going on under its lease",
						err, context.Cause(h.moved.Stopped()), h.moved.HandedOver())
				}
				if n := h.aLogs.FilterMessage("partitions handed over though their commit was answered failed: the runs the group leases to this member, as read back, go on here under their leases; the others stop, and their next owner decides them").Len(); n != 1 {
					t.Errorf("%d 'handed over' lines, want 1", n)
				}
			})
		}
	}
}

// TestHandoverNotAppliedStopsTheRuns: the broker refuses the handover's commit and has
// nothing of it: what the group holds leases nothing to A, so the new owner decides the run
// and A's run stops, as before the read-back.
func TestHandoverNotAppliedStopsTheRuns(t *testing.T) {
	kc := fakeCluster(t, 2)
	var failing atomic.Bool
	var refused atomic.Int32
	failCommits(kc, &failing, &refused, nil)
	h := handOverUnder(t, kc, "g-not-applied", "classic", true, &failing, func() bool { return refused.Load() >= 3 })
	if h.learned.Prior != PriorStarted {
		t.Fatalf("B learned %+v, want started before, not leased", h.learned)
	}
	if !errors.Is(context.Cause(h.moved.Stopped()), ErrNotOwned) || !errors.Is(h.moved.Held(), ErrNotOwned) {
		t.Fatalf("A's run the group does not lease to it: stopped %v, held %v; want ErrNotOwned",
			context.Cause(h.moved.Stopped()), h.moved.Held())
	}
	if n := h.aLogs.FilterMessageSnippet("their handover could not be committed").Len(); n != 1 {
		t.Errorf("%d lines saying the handover could not be committed, want 1", n)
	}
}

// TestHandoverReadBackFailingStopsTheRuns: the broker applies the handover's commit, answers
// it failed, and refuses to tell what it holds: A cannot know whether its run is leased and
// stops it, as before the read-back, saying so; the new owner waits for A to leave the group
// (README "Delivery").
func TestHandoverReadBackFailingStopsTheRuns(t *testing.T) {
	kc := fakeCluster(t, 2)
	var failing atomic.Bool
	answered := kfaketest.CommitsAppliedButFailed(kc, &failing)
	unread := kfaketest.RefuseOffsetFetches(kc, &failing)
	h := handOverUnder(t, kc, "g-unread", "classic", true, &failing, func() bool {
		return answered.Hits() >= 3 && unread.Hits() >= 1
	})
	if h.learned.Prior != PriorLeased {
		t.Fatalf("B learned %+v, want the run leased to A", h.learned)
	}
	if !errors.Is(context.Cause(h.moved.Stopped()), ErrNotOwned) || !errors.Is(h.moved.Held(), ErrNotOwned) {
		t.Fatalf("A's run, not known to be leased: stopped %v, held %v; want ErrNotOwned",
			context.Cause(h.moved.Stopped()), h.moved.Held())
	}
	if n := h.aLogs.FilterMessage("partitions revoked; neither their handover's commit nor a read of what the group holds went through: their runs here stop").Len(); n != 1 {
		t.Errorf("%d lines saying the read-back failed, want 1", n)
	}
}

// TestRevokingPartitionGoesOutInItsHandoverOnly: once a partition's revoke began, only its
// handover's commit says it (with this member's runs leased): a take's or the periodic
// commit would say the same runs without their leases, between the handover's tries or
// after its read-back, and the next owner would decide runs that go on here.
func TestRevokingPartitionGoesOutInItsHandoverOnly(t *testing.T) {
	l := newLedger(time.Minute)
	assignFresh(l, "t", 0)
	r := rec("t", 0, 0)
	l.add(r)
	lease := Lease{Holder: "m", Bound: time.Minute}
	if _, err := l.markStarted(r, plOf(l, r), lease); err != nil {
		t.Fatal(err)
	}
	l.revoking(map[string][]int32{"t": {0}})
	l.uncertain(topicPartition{"t", 0}) // a handover try answered failed
	if got := l.toCommit(nil); len(got) != 0 {
		t.Fatalf("a revoking partition in a commit that is not its handover: %+v", got)
	}
	s, ok := l.toCommit(map[topicPartition]Lease{{"t", 0}: lease})[topicPartition{"t", 0}]
	if got, _, err := decodeProgress(s.offset.Offset, s.meta); !ok || err != nil || got.leases[0] != lease {
		t.Fatalf("the handover's commit %q (%v, %v): want offset 0 leased to m", s.meta, ok, err)
	}
}

// TestReadBackGoesByWhatTheGroupHolds: the read-back of a handover answered failed keeps
// the runs what the group holds now leases to this member, whoever committed it last (the
// partition's next owner may have, carrying the leases it read), and no other: not one
// leased to another member, not one started without a lease, nothing on a partition nobody
// committed for.
func TestReadBackGoesByWhatTheGroupHolds(t *testing.T) {
	kc := fakeCluster(t, 2)
	group := "g-read-back"
	p := newProgress()
	p.started[0], p.started[1], p.started[2], p.finished[3] = true, true, true, true
	p.leases[0] = Lease{Holder: "A", Bound: time.Minute}
	p.leases[1] = Lease{Holder: "B", Bound: time.Minute}
	plant(t, kc, group, encodeProgress(0, p))
	c := newTestConsumer(t, kc, group, Options{CommitEvery: time.Hour})
	defer c.Close()
	parts := map[topicPartition]bool{{testTopic, 0}: true, {testTopic, 1}: true}
	leased, unread := c.leasedTo(context.Background(), c.client(), parts, "A")
	if len(unread) != 0 || len(leased) != 1 || len(leased[topicPartition{testTopic, 0}]) != 1 || !leased[topicPartition{testTopic, 0}][0] {
		t.Fatalf("read back %v (unread %v), want only offset 0 of partition 0", leased, unread)
	}
}

// TestHandoverGoesByItsOwnPartitions: the handover's commit also carries what changed on
// partitions that stay; one of those refused says nothing of the handover. The revoked
// partition's commit was answered: the handover neither tries again, holding the rebalance
// up, nor reads back what the group holds.
func TestHandoverGoesByItsOwnPartitions(t *testing.T) {
	kc := fakeCluster(t, 2)
	errs := make(chan error, 2)
	a := startTakingMember(t, kc, "g-own-parts", Options{CommitEvery: time.Hour}, errs)
	held := map[int32]*Ticket{}
	for range 2 {
		tk := a.next(t)
		held[tk.Record.Partition] = tk
	}
	held[1].Release(true) // partition 1, which stays, has its finish to commit
	kc.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.OffsetCommit}, Partitions: []int32{1}, Err: kerr.UnknownServerError, Count: -1})
	commits := kc.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.OffsetCommit}, Observe: true, Count: -1})
	fetches := kc.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.OffsetFetch}, Observe: true, Count: -1})
	c0, f0 := commits.Hits(), fetches.Hits()
	lease := Lease{Holder: a.c.memberID(), Bound: time.Minute}
	h, unread := a.c.handOver(context.Background(), a.c.client(), map[string][]int32{testTopic: {0}}, lease)
	if !h.committed[topicPartition{testTopic, 0}] || len(unread) != 0 {
		t.Fatalf("handed over %+v, unread %v: want partition 0 committed", h, unread)
	}
	if n, f := commits.Hits()-c0, fetches.Hits()-f0; n != 1 || f != 0 {
		t.Fatalf("the handover sent %d commits and %d reads back, want 1 and 0", n, f)
	}
}

package consumer

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/port-runner/port-runner/internal/waitcond"
)

// startOffset latest, a partition nothing was committed for: its owner hands it over (a
// rollout) before it polled anything, a run arrives, and the next owner must start where
// the first did, not at the end of its own time: the run would be read by neither.
func TestANeverCommittedPartitionIsHandedOverFromWhereItStarted(t *testing.T) {
	for _, empty := range []bool{false, true} {
		name := "with a record before"
		if empty {
			name = "empty"
		}
		t.Run(name, func(t *testing.T) {
			kc := fakeCluster(t, 1) // offset 0: a record
			if empty {
				var err error
				if kc, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, testTopic), kfake.GroupMinSessionTimeout(time.Second)); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(kc.Close)
			}
			group := "g-from-end"
			mk := func() *Consumer {
				return newTestConsumer(t, kc, group, Options{StartOffset: "latest", CommitEvery: time.Hour})
			}
			got := make(chan int64, 4)
			see := func(tk *Ticket) { got <- tk.Record.Offset }
			a := mk()
			stopA := runReleasing(t, a, see)
			waitcond.For(t, "the first owner joined", 20*time.Second, a.Joined)
			stopA() // hands the partition over, having polled nothing
			at, err := producer(t, kc).ProduceSync(context.Background(), &kgo.Record{Topic: testTopic, Value: []byte("new run")}).First()
			if err != nil {
				t.Fatal(err)
			}
			runReleasing(t, mk(), see)
			select {
			case off := <-got:
				if off != at.Offset {
					t.Errorf("the next owner handled offset %d, want %d", off, at.Offset)
				}
			case <-time.After(20 * time.Second):
				off, meta := committedMeta(t, kc, group, 0)
				t.Fatalf("the run at offset %d was never handed to the next owner (committed %d %q)", at.Offset, off, meta)
			}
		})
	}
}

// The end a never-committed partition started from is committed by the periodic commit
// too, not only at a handover: an owner that crashes before its first record leaves it.
func TestANeverCommittedPartitionsStartIsCommittedPeriodically(t *testing.T) {
	kc := fakeCluster(t, 1) // offset 0: a record; the end is 1
	c := newTestConsumer(t, kc, "g-from-end-periodic", Options{StartOffset: "latest", CommitEvery: 50 * time.Millisecond})
	runReleasing(t, c, func(*Ticket) {})
	waitcond.For(t, "the consumer joined", 20*time.Second, c.Joined) // the group exists from then on
	waitcond.For(t, "the end committed with nothing polled", 20*time.Second, func() bool {
		off, _ := committedMeta(t, kc, "g-from-end-periodic", 0)
		return off == 1
	})
}

// answerFirstListing answers the first listing of the partition's end, this member's own,
// with end, as it would have been just before a run arrived; any later one (franz-go's)
// answers as it is.
func answerFirstListing(kc *kfake.Cluster, end int64) {
	var listed atomic.Bool
	kc.ControlKey(kmsg.ListOffsets.Int16(), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		if !listed.CompareAndSwap(false, true) {
			return nil, nil, false
		}
		req := kr.(*kmsg.ListOffsetsRequest)
		resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewListOffsetsResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewListOffsetsResponseTopicPartition()
				sp.Partition, sp.Offset, sp.Timestamp, sp.LeaderEpoch = rp.Partition, end, -1, 0
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
}

// startOffset latest, a new group: a run that reaches the partition after this member
// listed its end (onAssigned) but before franz-go looks up where to start fetching is read
// all the same, as this member starts where it listed, not at franz-go's own later end;
// also when the partition's first commit, which says that start, is refused.
func TestARunArrivingAsTheGroupStartsIsRead(t *testing.T) {
	for _, refused := range []bool{false, true} {
		for _, protocol := range []string{"classic", "consumer"} {
			name := protocol
			if refused {
				name += ", first commit refused"
			}
			t.Run(name, func(t *testing.T) {
				kc := fakeCluster(t, 1) // offset 0: a record
				at, err := producer(t, kc).ProduceSync(context.Background(), &kgo.Record{Topic: testTopic, Value: []byte("new run")}).First()
				if err != nil {
					t.Fatal(err)
				}
				answerFirstListing(kc, at.Offset)
				var failing atomic.Bool
				var refusals atomic.Int32
				failing.Store(refused)
				failCommits(kc, &failing, &refusals, func() { failing.Store(false) }) // the first commit only
				group := "g-from-end-race-" + name
				every := time.Hour
				if refused {
					every = 50 * time.Millisecond
				}
				c := newTestConsumer(t, kc, group, Options{GroupProtocol: protocol, StartOffset: "latest", CommitEvery: every})
				got := make(chan int64, 4)
				runReleasing(t, c, func(tk *Ticket) { got <- tk.Record.Offset })
				select {
				case off := <-got:
					if off != at.Offset {
						t.Fatalf("handled offset %d, want %d (commits refused: %d)", off, at.Offset, refusals.Load())
					}
				case <-time.After(20 * time.Second):
					off, meta := committedMeta(t, kc, group, 0)
					t.Fatalf("the run at offset %d, which arrived as the group started, was never handled (committed %d %q; refused %d)",
						at.Offset, off, meta, refusals.Load())
				}
				if refused {
					waitcond.For(t, "the first commit refused", 20*time.Second, func() bool { return refusals.Load() > 0 })
				}
			})
		}
	}
}

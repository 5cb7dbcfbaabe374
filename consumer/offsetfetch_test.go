package consumer

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/port-runner/port-runner/internal/kfaketest"
)

// An answer to the read of what the group committed that does not carry the group is no
// answer: taken for "nothing committed", a partition would start at its end (startOffset
// latest) and skip the runs its earlier owner committed but had not handled. The partition
// waits, paused, until the group answers, and then starts at its commit.
func TestAnswerWithoutGroupPausesThePartition(t *testing.T) {
	kc := fakeCluster(t, 1)
	group := "g-answer-without-group"
	// The earlier owner's last commit: offset 0, and the run at offset 0 started.
	plant(t, kc, group, metaPrefix+" s=0")
	var failing atomic.Bool
	var answered atomic.Int32
	failing.Store(true)
	kfaketest.OffsetFetchesWithoutGroup(kc, &failing, func() { answered.Add(1) })

	c := newTestConsumer(t, kc, group, Options{StartOffset: "latest", CommitEvery: 50 * time.Millisecond})
	runCtx, stop := context.WithCancel(context.Background())
	defer stop()
	type handled struct {
		offset int64
		prior  Prior
	}
	runs := make(chan handled, 4)
	done := make(chan error, 1)
	go func() {
		done <- c.Run(runCtx, context.Background(), func(_ context.Context, tk *Ticket) {
			runs <- handled{tk.Record.Offset, tk.Learned().Prior}
			tk.Release(true)
		})
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !c.Joined() {
		if time.Now().After(deadline) {
			t.Fatal("never joined the group")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A run that comes after the assignment: read from the end, it is the first handled.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := producer(t, kc).ProduceSync(ctx, &kgo.Record{Topic: testTopic, Partition: 0, Value: []byte("run")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for {
		c.priorMu.Lock()
		paused := c.unknownPrior[topicPartition{testTopic, 0}]
		c.priorMu.Unlock()
		if paused && answered.Load() >= 3 {
			break
		}
		select {
		case h := <-runs:
			t.Fatalf("record at offset %d handled while the group's commit was unread: the run at offset 0, committed and not handled, is skipped", h.offset)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("partition never paused (%d answers without the group)", answered.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	failing.Store(false) // the group answers again: the commit loop reads it and resumes
	// Both records come, handled side by side: the one at offset 0 as the earlier owner's.
	for range 2 {
		select {
		case h := <-runs:
			if want := map[int64]Prior{0: PriorStarted, 1: Fresh}[h.offset]; h.offset > 1 || h.prior != want {
				t.Fatalf("record at offset %d handled as %v, want %v", h.offset, h.prior, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("partition never resumed")
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A handover's read-back answered without the group could not read what the group holds:
// its partitions are unread, not "nothing leased".
func TestReadBackWithoutGroupIsUnread(t *testing.T) {
	kc := fakeCluster(t, 1)
	group := "g-read-back-without-group"
	p := newProgress()
	p.started[0] = true
	p.leases[0] = Lease{Holder: "A", Bound: time.Minute}
	plant(t, kc, group, encodeProgress(0, p))
	var failing atomic.Bool
	failing.Store(true)
	kfaketest.OffsetFetchesWithoutGroup(kc, &failing, nil)
	c := newTestConsumer(t, kc, group, Options{CommitEvery: time.Hour})
	defer c.Close()
	tp := topicPartition{testTopic, 0}
	leased, unread := c.leasedTo(context.Background(), c.client(), map[topicPartition]bool{tp: true}, "A")
	if !unread[tp] || len(leased) != 0 {
		t.Fatalf("read back %v (unread %v) from an answer without the group, want partition 0 unread", leased, unread)
	}
}

// The lag read from an answer without the group fails (the refresh-failed gauge says so),
// rather than showing nothing behind.
func TestLagWithoutGroupFails(t *testing.T) {
	kc := fakeCluster(t, 1)
	group := "g-lag-without-group"
	plant(t, kc, group, metaPrefix) // committed at 0, the end is 1: one message behind
	var failing atomic.Bool
	failing.Store(true)
	kfaketest.OffsetFetchesWithoutGroup(kc, &failing, nil)
	col := NewLagCollector(LagOptions{Client: producer(t, kc), Topic: testTopic, Group: group, StartOffset: "latest"})
	if err := col.Refresh(context.Background()); err == nil {
		t.Fatalf("lag read from an answer without the group: %v, want an error", col.lags)
	}
	failing.Store(false)
	if err := col.Refresh(context.Background()); err != nil || col.lags[0] != 1 {
		t.Fatalf("lag %v (%v) once the group answers, want 1 on partition 0", col.lags, err)
	}
}

// The read naming partition 0 (an answer to the read of the whole group that lists nothing)
// may carry the group with an error of its own: that error is the read's, not "the answer
// does not carry the group", so that an authorization failure says so and the lag collector
// still takes a group not found for nothing committed.
func TestGroupErrorAtThePartitionReadIsSaid(t *testing.T) {
	for _, want := range []*kerr.Error{kerr.GroupAuthorizationFailed, kerr.GroupIDNotFound} {
		kc := fakeCluster(t, 1)
		group := "g-partition-read-error"
		// As Kafka 4 answers an admin's read of a group with nothing committed: the group, no
		// topics; the read naming a partition then fails with want.
		answerGroupReads(kc, group, func(rg kmsg.OffsetFetchRequestGroup, g *kmsg.OffsetFetchResponseGroup) {
			if len(rg.Topics) > 0 {
				g.ErrorCode = want.Code
			}
		})
		_, err := fetchGroupOffsets(context.Background(), producer(t, kc), group, testTopic)
		if !errors.Is(err, want) {
			t.Errorf("read answered %v: %v, want it said", want, err)
		}
		if want == kerr.GroupIDNotFound {
			col := NewLagCollector(LagOptions{Client: producer(t, kc), Topic: testTopic, Group: group, StartOffset: "latest"})
			if err := col.Refresh(context.Background()); err != nil {
				t.Errorf("lag of a group not found: %v, want nothing committed", err)
			}
		}
	}
}

// The read naming partition 0 may answer that partition with an error of its own (the topic
// not authorized, an offset under a transaction): the group's commits are then unread, not
// "nothing committed", which would start every partition anew.
func TestPartitionErrorAtThePartitionReadIsSaid(t *testing.T) {
	for _, want := range []*kerr.Error{kerr.TopicAuthorizationFailed, kerr.UnstableOffsetCommit} {
		kc := fakeCluster(t, 1)
		group := "g-partition-read-partition-error"
		answerGroupReads(kc, group, func(rg kmsg.OffsetFetchRequestGroup, g *kmsg.OffsetFetchResponseGroup) {
			for _, rt := range rg.Topics {
				st := kmsg.NewOffsetFetchResponseGroupTopic()
				st.Topic = rt.Topic
				for _, p := range rt.Partitions {
					sp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					sp.Partition, sp.Offset, sp.ErrorCode = p, -1, want.Code
					st.Partitions = append(st.Partitions, sp)
				}
				g.Topics = append(g.Topics, st)
			}
		})
		if resps, err := fetchGroupOffsets(context.Background(), producer(t, kc), group, testTopic); !errors.Is(err, want) {
			t.Errorf("partition 0 answered %v: %v (offsets %v), want the read to fail with it", want, err, resps)
		}
	}
}

// answerGroupReads makes kc answer every read of group's commits (OffsetFetch v8+, that group
// alone) with the group filled in by answer: none of its topics unless answer adds them.
func answerGroupReads(kc *kfake.Cluster, group string, answer func(kmsg.OffsetFetchRequestGroup, *kmsg.OffsetFetchResponseGroup)) {
	kc.ControlKey(kmsg.OffsetFetch.Int16(), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		req := kr.(*kmsg.OffsetFetchRequest)
		if req.Version < 8 || len(req.Groups) != 1 || req.Groups[0].Group != group {
			return nil, nil, false
		}
		resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
		g := kmsg.NewOffsetFetchResponseGroup()
		g.Group = group
		answer(req.Groups[0], &g)
		resp.Groups = append(resp.Groups, g)
		return resp, nil, true
	})
}

// The second read names every partition of the topic, not partition 0 alone: a group that
// committed on partition 1 only is read as such, however the first read was answered.
func TestCommitElsewhereAtThePartitionReadIsNotNothingCommitted(t *testing.T) {
	kc := fakeCluster(t, 2)
	group := "g-partition-read-commit-elsewhere"
	adm := kadm.NewClient(producer(t, kc))
	planted := kadm.Offsets{}
	planted.Add(kadm.Offset{Topic: testTopic, Partition: 1, At: 0, LeaderEpoch: -1, Metadata: metaPrefix + " s=0"})
	if _, err := adm.CommitOffsets(context.Background(), group, planted); err != nil {
		t.Fatal(err)
	}
	firstWholeReadWithoutGroup(kc, group)
	resps, err := fetchGroupOffsets(context.Background(), producer(t, kc), group, testTopic)
	if r, ok := resps.Lookup(testTopic, 1); err == nil && (!ok || r.At != 0) {
		t.Fatalf("read %v (no error) where partition 1 is committed at 0: nothing committed, want an error or the commit", resps)
	}
}

// The read naming partition 0 may find a commit there: the read of the whole group that
// listed nothing was then an answer without the group (once: the next carries it), and the
// group's commits are unread, not "nothing committed" on every partition.
func TestCommitAtThePartitionReadIsNotNothingCommitted(t *testing.T) {
	kc := fakeCluster(t, 1)
	group := "g-partition-read-commit"
	plant(t, kc, group, metaPrefix+" s=0") // committed at 0
	wholeReads := firstWholeReadWithoutGroup(kc, group)
	resps, err := fetchGroupOffsets(context.Background(), producer(t, kc), group, testTopic)
	if wholeReads.Load() != 1 {
		t.Fatalf("%d reads of the whole group, want 1", wholeReads.Load())
	}
	if r, ok := resps.Lookup(testTopic, 0); err == nil && (!ok || r.At != 0) {
		t.Fatalf("read %v (no error) where partition 0 is committed at 0: nothing committed, want an error or the commit", resps)
	}
}

// firstWholeReadWithoutGroup makes kc answer the first read of the whole of group's commits
// (OffsetFetch v8+, no topics named) without the group, and the next ones as it would; it
// counts those reads.
func firstWholeReadWithoutGroup(kc *kfake.Cluster, group string) *atomic.Int32 {
	var wholeReads atomic.Int32
	kc.ControlKey(kmsg.OffsetFetch.Int16(), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		req := kr.(*kmsg.OffsetFetchRequest)
		if req.Version < 8 || len(req.Groups) != 1 || req.Groups[0].Group != group || len(req.Groups[0].Topics) > 0 {
			return nil, nil, false
		}
		if wholeReads.Add(1) > 1 {
			return nil, nil, false
		}
		return req.ResponseKind(), nil, true
	})
	return &wholeReads
}

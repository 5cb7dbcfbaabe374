package consumer

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/port-runner/port-runner/executor"
	"github.com/port-runner/port-runner/internal/kfaketest"
)

const testTopic = "runs"

// fakeCluster is an in-process kfake broker with testTopic of the given partitions, holding
// one record per partition; opts add to its configuration.
func fakeCluster(t testing.TB, partitions int32, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	kc, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(partitions, testTopic), kfake.GroupMinSessionTimeout(time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	prod := producer(t, kc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for p := range partitions {
		if err := prod.ProduceSync(ctx, &kgo.Record{Topic: testTopic, Partition: p, Value: []byte("run")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	return kc
}

// producer is a client of kc that writes each record to the partition it names; closed
// when the test ends.
func producer(t testing.TB, kc *kfake.Cluster) *kgo.Client {
	t.Helper()
	prod, err := kgo.NewClient(kgo.SeedBrokers(kc.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	return prod
}

func newTestConsumer(t testing.TB, kc *kfake.Cluster, group string, opts Options) *Consumer {
	t.Helper()
	opts.Brokers = kc.ListenAddrs()
	opts.Topic = testTopic
	opts.Group = group
	if opts.StartOffset == "" {
		opts.StartOffset = "earliest"
	}
	if opts.Slots == nil {
		opts.Slots = executor.NewPool(4, nil)
	}
	opts.ClientOpts = append(opts.ClientOpts, kgo.HeartbeatInterval(100*time.Millisecond))
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// committedMeta reads what the broker has for the group's partition.
func committedMeta(t *testing.T, kc *kfake.Cluster, group string, p int32) (int64, string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kc.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resps, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	r, ok := resps.Lookup(testTopic, p)
	if !ok {
		return -1, ""
	}
	return r.At, r.Metadata
}

// failCommits makes the broker refuse offset commits (a partition-level error, as during a
// rebalance) while on is true, and counts the refusals after calling hook.
func failCommits(kc *kfake.Cluster, on *atomic.Bool, refused *atomic.Int32, hook func()) {
	kfaketest.RefuseCommits(kc, on, func() {
		if hook != nil {
			hook()
		}
		refused.Add(1)
	})
}

// plant commits offset 0 of partition 0 with meta for group, as an earlier owner would have.
func plant(t *testing.T, kc *kfake.Cluster, group, meta string) {
	t.Helper()
	adminCl, err := kgo.NewClient(kgo.SeedBrokers(kc.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer adminCl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	planted := kadm.Offsets{}
	planted.Add(kadm.Offset{Topic: testTopic, Partition: 0, At: 0, LeaderEpoch: -1, Metadata: meta})
	if _, err := kadm.NewClient(adminCl).CommitOffsets(ctx, group, planted); err != nil {
		t.Fatal(err)
	}
}

// joinSecondMember starts another member of group, polling until the returned stop is
// called: a rebalance takes partitions away from the first.
func joinSecondMember(t *testing.T, kc *kfake.Cluster, group string, opts ...kgo.Opt) (stop func()) {
	t.Helper()
	other, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(kc.ListenAddrs()...), kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(testTopic), kgo.HeartbeatInterval(100 * time.Millisecond), kgo.DisableAutoCommit()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	pollCtx, stopPolling := context.WithCancel(context.Background())
	var polling sync.WaitGroup
	polling.Go(func() {
		for pollCtx.Err() == nil {
			other.PollFetches(pollCtx)
		}
	})
	return func() { stopPolling(); polling.Wait(); other.Close() }
}

// A run whose "started" mark never reached the broker did not start: when Take gives up
// (the agent stops while commits fail), the mark must not go out with a later commit, or the
// next owner closes a run that never ran as "interrupted" instead of running it.
func TestStartedGivenUpLeavesNoStartedMark(t *testing.T) {
	kc := fakeCluster(t, 1)
	var failing atomic.Bool
	var refused atomic.Int32
	firstRefused := make(chan struct{})
	var once sync.Once
	failing.Store(true)
	failCommits(kc, &failing, &refused, func() { once.Do(func() { close(firstRefused) }) })

	group := "g-started-given-up"
	c := newTestConsumer(t, kc, group, Options{CommitEvery: time.Hour})
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	startErr := make(chan error, 1)
	err := c.Run(ctx, context.Background(), func(_ context.Context, tk *Ticket) {
		sctx, giveUp := context.WithCancel(context.Background())
		go func() {
			// Give up once a commit carrying the mark has been refused.
			select {
			case <-firstRefused:
				giveUp()
			case <-sctx.Done():
			}
		}()
		err := tk.Take(sctx)
		giveUp()
		startErr <- err
		failing.Store(false) // the broker is back for the final commit
		stop()
		tk.Release(false) // not started: left for the next owner
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-startErr; err == nil {
		t.Fatal("Take succeeded although every commit was refused")
	}
	off, meta := committedMeta(t, kc, group, 0)
	if strings.Contains(meta, "s=") {
		t.Fatalf("committed %d %q: a run that never started is marked started", off, meta)
	}
}

// A partition lost and assigned back while a start is being committed is a new ownership:
// the start belonged to the old one and must not count as committed because the new
// ownership's commits reached the same version number.
func TestStartedDoesNotTrustAReassignedPartitionsVersions(t *testing.T) {
	kc := fakeCluster(t, 1)
	var failing atomic.Bool
	var refused atomic.Int32
	var c *Consumer
	tp := topicPartition{testTopic, 0}
	failing.Store(true)
	failCommits(kc, &failing, &refused, func() {
		if refused.Load() > 0 {
			return
		}
		// While the first commit carrying the start is at the broker: the partition is lost,
		// then assigned back, and its record polled and started again by the new ownership.
		c.onLost(context.Background(), nil, map[string][]int32{testTopic: {0}})
		c.ledger.assign(map[topicPartition]assigned{tp: {offset: -1}})
		again := &kgo.Record{Topic: testTopic, Partition: 0, Offset: 0}
		p, _, _ := c.ledger.add(again)
		c.ledger.markStarted(again, p.pl, Lease{Holder: "m"})
		c.ledger.abandon(again, p.pl)
		failing.Store(false)
	})

	group := "g-reassigned"
	c = newTestConsumer(t, kc, group, Options{CommitEvery: time.Hour})
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	startErr := make(chan error, 1)
	err := c.Run(ctx, context.Background(), func(_ context.Context, tk *Ticket) {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		startErr <- tk.Take(sctx)
		stop()
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-startErr; !errors.Is(err, ErrNotOwned) {
		t.Fatalf("Take = %v after the partition changed hands, want ErrNotOwned", err)
	}
}

// An earlier owner's progress that cannot be read must not be taken for "nothing started":
// the partition waits, paused, until it can be read, and its record then comes with the
// earlier owner's mark.
func TestUnreadableProgressPausesThePartition(t *testing.T) {
	kc := fakeCluster(t, 1)
	group := "g-unreadable-progress"
	// The dead owner's last commit: offset 0, and the run at offset 0 started.
	plant(t, kc, group, metaPrefix+" s=0")

	// Refuse the agent's own progress lookups (they ask for the whole group), not the
	// client's internal offset fetch (which names its partitions).
	var failing atomic.Bool
	var refused atomic.Int32
	failing.Store(true)
	kc.ControlKey(kmsg.OffsetFetch.Int16(), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		req := kr.(*kmsg.OffsetFetchRequest)
		all := req.Topics == nil // before v8
		if len(req.Groups) > 0 { // v8+: the request's groups say
			all = false
			for _, g := range req.Groups {
				all = all || g.Topics == nil
			}
		}
		if !failing.Load() || !all {
			return nil, nil, false
		}
		resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		for _, g := range req.Groups {
			rg := kmsg.NewOffsetFetchResponseGroup()
			rg.Group = g.Group
			rg.ErrorCode = kerr.GroupAuthorizationFailed.Code
			resp.Groups = append(resp.Groups, rg)
		}
		refused.Add(1)
		return resp, nil, true
	})

	c := newTestConsumer(t, kc, group, Options{CommitEvery: 50 * time.Millisecond})
	runCtx, stop := context.WithCancel(context.Background())
	defer stop()
	priors := make(chan Prior, 1)
	done := make(chan error, 1)
	go func() {
		done <- c.Run(runCtx, context.Background(), func(_ context.Context, tk *Ticket) {
			priors <- tk.Learned().Prior
			tk.Release(true)
		})
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c.priorMu.Lock()
		paused := len(c.unknownPrior) > 0
		c.priorMu.Unlock()
		if paused && refused.Load() >= 3 {
			break
		}
		select {
		case p := <-priors:
			t.Fatalf("record handled (prior %v) while the earlier owner's progress was unreadable", p)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("partition never paused (refused %d lookups)", refused.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	failing.Store(false) // the lookup works again: the commit loop reads it and resumes
	select {
	case p := <-priors:
		if p != PriorStarted {
			t.Fatalf("record came as %v, want %v (the earlier owner started it)", p, PriorStarted)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("partition never resumed")
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

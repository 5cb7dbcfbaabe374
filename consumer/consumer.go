// Package consumer owns the agent's place in the Kafka consumer group: it polls only as many
// run messages as the pool has free slots, hands each to a handler, and commits a partition's
// offset only up to its oldest unfinished message, for partitions it still owns.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/port-runner/port-runner/internal/backoff"
)

// Slots is the pool capacity the consumer polls for.
type Slots interface {
	// Reserve blocks until at least one slot is free and takes up to limit of them.
	Reserve(ctx context.Context, limit int) (int, error)
	Release(n int)
}

// Handler processes one record. It reports whether the record's work is finished (run
// closed, or message skipped): unfinished records are not committed and come back later.
// ctx ends with Run's workCtx, or when the record's partition goes to another member
// (revoked and not finished within RevokeWait, or lost): the cause then says so.
type Handler func(ctx context.Context, t *Ticket) (finished bool)

// Ticket is one record handed to the handler, with what earlier owners of its partition
// left known about it.
type Ticket struct {
	Record *kgo.Record
	Prior  Prior
	c      *Consumer
	owned  context.Context // done when the record's run must stop here
	// Handover is done once this member has begun handing the record's partition over (a
	// revoke): a run not started by then must not start, and the revoke does not wait for it.
	Handover context.Context
}

// ErrNotOwned: the record's partition went to another member (revoked or lost). A run not
// started must not start here (Started returns it); a running one is cancelled with it as
// its context's cause, so its statusLabel reads "cancelled: " + this text (README "Delivery").
var ErrNotOwned = errors.New("partition reassigned to another agent")

// Started makes "this run is starting" durable in the group's committed metadata, and
// returns once the broker has it, so that if this agent dies, the next owner knows the
// command may have run. It retries commit failures until ctx ends or the partition is gone.
func (t *Ticket) Started(ctx context.Context) error {
	rec := t.Record
	tp := topicPartition{rec.Topic, rec.Partition}
	m, ok := t.c.ledger.markStarted(rec)
	if !ok {
		return ErrNotOwned
	}
	for attempt := 0; ; attempt++ {
		// The commit itself is not cut short by ctx: a cancelled commit may still reach the
		// broker, and then nobody would know whether the mark is there (see commit).
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		t.c.commit(cctx)
		cancel()
		covered, owned := t.c.ledger.committedVersion(tp, m)
		switch {
		case covered:
			return nil
		case !owned:
			return ErrNotOwned
		}
		if backoff.Sleep(ctx, backoff.Policy{Base: 50 * time.Millisecond, Max: 2 * time.Second}.Delay(attempt, 0)) != nil {
			// The command will not run: a later commit must not say it may have.
			t.c.ledger.unmarkStarted(rec, m)
			return fmt.Errorf("record start of %s/%d@%d: %w", rec.Topic, rec.Partition, rec.Offset, context.Cause(ctx))
		}
	}
}

// Runs is what the member's handlers know of the runs they hold (the agent's one run
// lifecycle): a revoke releases a partition only once Runs holds no run of it that may
// still run or is being closed here.
type Runs interface {
	// Holding is how many runs of the partition may still run here or are being closed in
	// Port: from their durable start mark until their record may be committed past.
	Holding(topic string, partition int32) int
	// Changed is closed at the next change of any run.
	Changed() <-chan struct{}
}

type Options struct {
	Brokers       []string
	Topic         string
	Group         string
	StartOffset   string // latest | earliest
	GroupProtocol string // classic | consumer (KIP-848)
	ClientOpts    []kgo.Opt
	Slots         Slots
	MaxPoll       int           // records per poll at most; 0 -> 64
	CommitEvery   time.Duration // 0 -> 1s
	RevokeWait    time.Duration // how long a revoke waits for runs of its partitions to end; 0 -> 20s
	// StopWait is how long a revoke then waits for the runs it cancelled to be killed and
	// closed in Port before it releases the partition anyway; 0 -> 70s. RevokeWait +
	// StopWait + a commit must fit in the group's rebalance timeout (kgo.RebalanceTimeout).
	StopWait time.Duration
	Logger   *zap.Logger
	OnLags   func(lags map[int32]int64) // every owned partition's lag, each commit tick
	// OnFatal is told at once of an error retrying cannot fix (Run returns it once every
	// handler has ended), so the caller can start its shutdown rather than wait for them.
	OnFatal func(error)
	// Runs answers the revoke's "may I release this partition"; nil: the ledger alone does.
	Runs Runs
}

// Consumer is one member of the group.
type Consumer struct {
	opts   Options
	cl     *kgo.Client
	ledger *ledger
	log    *zap.Logger
	joined atomic.Bool
	// commitMu orders commits: each carries a snapshot of the ledger, and a newer snapshot
	// must never reach the broker before an older one.
	commitMu sync.Mutex
	// priorMu guards unknownPrior: assigned partitions whose earlier progress could not be
	// read yet, kept paused (see onAssigned).
	priorMu      sync.Mutex
	unknownPrior map[topicPartition]bool
	pauseMu      sync.Mutex // orders window pauses and resumes (syncPause)
}

// New creates the Kafka client. It does not connect yet: Run does.
func New(opts Options) (*Consumer, error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.MaxPoll <= 0 {
		opts.MaxPoll = 64
	}
	if opts.CommitEvery <= 0 {
		opts.CommitEvery = time.Second
	}
	if opts.RevokeWait <= 0 {
		opts.RevokeWait = 20 * time.Second
	}
	if opts.StopWait <= 0 {
		opts.StopWait = 70 * time.Second
	}
	if opts.OnLags == nil {
		opts.OnLags = func(map[int32]int64) {}
	}
	if opts.OnFatal == nil {
		opts.OnFatal = func(error) {}
	}
	c := &Consumer{opts: opts, ledger: newLedger(), log: opts.Logger, unknownPrior: map[topicPartition]bool{}}
	start := kgo.NewOffset().AtEnd()
	if opts.StartOffset == "earliest" {
		start = kgo.NewOffset().AtStart()
	}
	kopts := []kgo.Opt{
		kgo.SeedBrokers(opts.Brokers...),
		kgo.ConsumerGroup(opts.Group),
		kgo.ConsumeTopics(opts.Topic),
		kgo.ConsumeResetOffset(start),
		kgo.DisableAutoCommit(),
		// Rebalances wait between a poll and the registration of its records, never for a
		// run: a revoke then sees every polled record in the ledger.
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(c.onAssigned),
		kgo.OnPartitionsRevoked(c.onRevoked),
		kgo.OnPartitionsLost(c.onLost),
		// Bound what the client buffers ahead of the pool: a huge backlog must not grow memory.
		// The limits count compressed bytes and one fetch is held decompressed, so they are
		// small (BENCHMARKS.md "Backlog memory"); a record over them still comes (KIP-74).
		kgo.FetchMaxBytes(1 << 20),
		kgo.FetchMaxPartitionBytes(256 << 10),
		kgo.MaxConcurrentFetches(1),
		// A dead replica's partitions wait this long for a new owner (Kafka's default is 45s);
		// heartbeats go every 3s, so 15s still rides out a slow broker. KIP-848 groups use the
		// broker's group.consumer.session.timeout.ms instead.
		kgo.SessionTimeout(15 * time.Second),
	}
	if opts.GroupProtocol == "consumer" {
		kopts = append(kopts, kgo.Balancers(kgo.CooperativeStickyBalancer()), kgo.ServerSideBalancer())
	}
	kopts = append(kopts, opts.ClientOpts...)
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	c.cl = cl
	return c, nil
}

// Joined reports whether the member has joined the group (even with no partitions: a
// replica without partitions is a ready, idle standby).
func (c *Consumer) Joined() bool { return c.joined.Load() }

// Ping checks that the brokers answer with the configured credentials, so a wrong password
// fails at start with a clear error rather than a silent retry loop.
func (c *Consumer) Ping(ctx context.Context) error {
	req := kmsg.NewPtrMetadataRequest()
	t := kmsg.NewMetadataRequestTopic()
	t.Topic = kmsg.StringPtr(c.opts.Topic)
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, c.cl)
	if err != nil {
		return fmt.Errorf("connect to kafka %v: %w", c.opts.Brokers, err)
	}
	for _, rt := range resp.Topics {
		if err := kerrOf(rt.ErrorCode); err != nil {
			return fmt.Errorf("topic %s: %w", c.opts.Topic, err)
		}
	}
	return nil
}

// Run consumes until ctx is done, then stops fetching, waits for every handler (they finish
// under their own context, workCtx), commits what finished and leaves the group.
func (c *Consumer) Run(ctx, workCtx context.Context, handle Handler) error {
	var handlers sync.WaitGroup
	commitCtx, stopCommitter := context.WithCancel(context.WithoutCancel(ctx))
	var committer sync.WaitGroup
	committer.Go(func() { c.commitLoop(commitCtx) })

	err := c.poll(ctx, workCtx, handle, &handlers)

	handlers.Wait()
	stopCommitter()
	committer.Wait()
	finalCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	c.commit(finalCtx)
	// With BlockRebalanceOnPoll, leaving must not wait behind a blocked rebalance.
	c.cl.CloseAllowingRebalance()
	return err
}

func (c *Consumer) poll(ctx, workCtx context.Context, handle Handler, handlers *sync.WaitGroup) error {
	for {
		n, err := c.opts.Slots.Reserve(ctx, c.opts.MaxPoll)
		if err != nil {
			return nil // ctx done: stop fetching
		}
		fetches := c.cl.PollRecords(ctx, n)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			c.cl.AllowRebalance()
			c.opts.Slots.Release(n)
			return nil
		}
		var fatal error
		fetches.EachError(func(topic string, partition int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			c.log.Warn("fetch error", zap.String("topic", topic), zap.Int32("partition", partition), zap.Error(err))
			if isFatal(err) {
				fatal = fmt.Errorf("fetch %s/%d: %w", topic, partition, err)
			}
		})
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			c.ledger.setHighWater(p.Topic, p.Partition, p.HighWatermark)
		})
		var tickets []*Ticket
		fetches.EachRecord(func(r *kgo.Record) {
			prior, ok, pause := c.ledger.add(r)
			if ok {
				owned, handover := c.ledger.ownedCtx(r)
				tickets = append(tickets, &Ticket{Record: r, Prior: prior, c: c, owned: owned, Handover: handover})
			}
			if pause {
				c.syncPause(topicPartition{r.Topic, r.Partition})
			}
		})
		c.cl.AllowRebalance()
		c.opts.Slots.Release(n - len(tickets))
		if fatal != nil {
			c.opts.Slots.Release(len(tickets))
			c.opts.OnFatal(fatal)
			return fatal
		}
		for _, t := range tickets {
			handlers.Go(func() {
				defer c.opts.Slots.Release(1)
				// The handler's work ends with workCtx, or when the partition goes to another
				// member: from then on that member handles the run (as interrupted), so it
				// must not go on here.
				hctx, cancel := context.WithCancelCause(workCtx)
				defer cancel(nil)
				stop := context.AfterFunc(t.owned, func() { cancel(context.Cause(t.owned)) })
				defer stop()
				if handle(hctx, t) {
					if c.ledger.finish(t.Record) {
						c.syncPause(topicPartition{t.Record.Topic, t.Record.Partition})
					}
				} else {
					c.ledger.abandon(t.Record)
				}
			})
		}
	}
}

// syncPause pauses or resumes a partition's fetching as its ledger window says now. The
// state is read under pauseMu, so a pause and a resume decided at once never reach the
// client in the wrong order.
func (c *Consumer) syncPause(tp topicPartition) {
	c.pauseMu.Lock()
	defer c.pauseMu.Unlock()
	paused, owned := c.ledger.windowPaused(tp)
	if !owned {
		return
	}
	parts := map[string][]int32{tp.topic: {tp.partition}}
	if paused {
		c.cl.PauseFetchPartitions(parts)
		c.log.Info("partition paused: too many finished offsets wait behind an unfinished one",
			zap.String("topic", tp.topic), zap.Int32("partition", tp.partition))
	} else {
		c.cl.ResumeFetchPartitions(parts)
		c.log.Info("partition resumed", zap.String("topic", tp.topic), zap.Int32("partition", tp.partition))
	}
}

// commitLoop commits finished offsets periodically: often enough that a restart redoes
// little, rarely enough to cost the broker nothing.
func (c *Consumer) commitLoop(ctx context.Context) {
	t := time.NewTicker(c.opts.CommitEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.retryUnknownPrior(ctx)
			c.commit(ctx)
			c.opts.OnLags(c.ledger.lags())
		}
	}
}

func (c *Consumer) commit(ctx context.Context) {
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	snaps := c.ledger.toCommit()
	if len(snaps) == 0 {
		return
	}
	offsets := map[string]map[int32]kgo.EpochOffset{}
	for tp, s := range snaps {
		if offsets[tp.topic] == nil {
			offsets[tp.topic] = map[int32]kgo.EpochOffset{}
		}
		offsets[tp.topic][tp.partition] = s.offset
	}
	// The metadata field carries each partition's progress (see meta.go).
	withMeta := kgo.PreCommitFnContext(ctx, func(req *kmsg.OffsetCommitRequest) error {
		for i := range req.Topics {
			for j := range req.Topics[i].Partitions {
				p := &req.Topics[i].Partitions[j]
				if s, ok := snaps[topicPartition{c.topicName(req.Topics[i].Topic), p.Partition}]; ok {
					meta := s.meta
					p.Metadata = &meta
				}
			}
		}
		return nil
	})
	c.cl.CommitOffsetsSync(withMeta, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			// The request may or may not have been applied: forget what the broker has, so
			// the next commit goes out whatever it says (an unmarked start, say).
			c.log.Warn("commit offsets", zap.Error(err))
			for tp := range snaps {
				c.ledger.uncertain(tp)
			}
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				tp := topicPartition{c.topicName(t.Topic), p.Partition}
				if err := kerrOf(p.ErrorCode); err != nil {
					c.log.Warn("commit offset", zap.String("topic", tp.topic), zap.Int32("partition", p.Partition), zap.Error(err))
					continue
				}
				if s, ok := snaps[tp]; ok {
					c.ledger.committed(tp, s)
				}
			}
		}
	})
}

// topicName fills in the topic of a request or response that names it by ID only
// (OffsetCommit v10+): this consumer reads one topic.
func (c *Consumer) topicName(name string) string {
	if name == "" {
		return c.opts.Topic
	}
	return name
}

// onAssigned reads what earlier owners committed for the new partitions (offset and
// progress metadata) before fetching starts, so no record is handled without it. A
// partition whose progress cannot be read stays paused, and the commit loop keeps asking:
// handling its records blind could run again what an earlier owner ran.
func (c *Consumer) onAssigned(ctx context.Context, cl *kgo.Client, assignedParts map[string][]int32) {
	if len(assignedParts) > 0 {
		c.log.Info("partitions assigned", zap.Any("partitions", assignedParts))
		known, failed := c.fetchCommitted(ctx, cl, assignedParts, 3)
		c.priorMu.Lock()
		c.ledger.assign(known)
		for tp := range failed {
			c.unknownPrior[tp] = true
		}
		c.priorMu.Unlock()
		if len(failed) > 0 {
			cl.PauseFetchPartitions(partitionsOf(failed))
			c.log.Error("cannot read what earlier owners committed; partitions paused until it can be read",
				zap.Any("partitions", partitionsOf(failed)))
		}
		// A partition paused in an earlier assignment must not stay paused now.
		cl.ResumeFetchPartitions(partitionsOf(known))
	}
	c.joined.Store(true)
}

// retryUnknownPrior asks again for the progress of paused partitions and resumes those it
// gets, if they are still this member's.
func (c *Consumer) retryUnknownPrior(ctx context.Context) {
	c.priorMu.Lock()
	pending := map[topicPartition]assigned{}
	for tp := range c.unknownPrior {
		pending[tp] = assigned{}
	}
	c.priorMu.Unlock()
	if len(pending) == 0 {
		return
	}
	known, _ := c.fetchCommitted(ctx, c.cl, partitionsOf(pending), 1)
	resumed := map[topicPartition]assigned{}
	c.priorMu.Lock()
	for tp, a := range known {
		if c.unknownPrior[tp] {
			delete(c.unknownPrior, tp)
			resumed[tp] = a
		}
	}
	c.ledger.assign(resumed)
	c.priorMu.Unlock()
	if len(resumed) > 0 {
		c.cl.ResumeFetchPartitions(partitionsOf(resumed))
		c.log.Info("read earlier owners' progress; partitions resumed", zap.Any("partitions", partitionsOf(resumed)))
	}
}

// forgetUnknownPrior drops released partitions from those waiting for their progress.
func (c *Consumer) forgetUnknownPrior(parts map[string][]int32) {
	c.priorMu.Lock()
	defer c.priorMu.Unlock()
	for topic, ps := range parts {
		for _, p := range ps {
			delete(c.unknownPrior, topicPartition{topic, p})
		}
	}
}

func partitionsOf[V any](m map[topicPartition]V) map[string][]int32 {
	out := map[string][]int32{}
	for tp := range m {
		out[tp.topic] = append(out[tp.topic], tp.partition)
	}
	return out
}

// fetchCommitted reads the group's committed offsets and progress for parts. known holds
// the partitions it could read (offset -1: nothing committed yet); failed the others.
func (c *Consumer) fetchCommitted(ctx context.Context, cl *kgo.Client, parts map[string][]int32, attempts int) (known map[topicPartition]assigned, failed map[topicPartition]bool) {
	known, failed = map[topicPartition]assigned{}, map[topicPartition]bool{}
	var resps kadm.OffsetResponses
	var err error
	for attempt := 0; attempt < attempts; attempt++ {
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resps, err = kadm.NewClient(cl).FetchOffsets(fctx, c.opts.Group)
		cancel()
		if err == nil || ctx.Err() != nil {
			break
		}
		c.log.Warn("fetch committed offsets", zap.Int("attempt", attempt+1), zap.Error(err))
		if attempt+1 < attempts && backoff.Sleep(ctx, backoff.Policy{Base: 100 * time.Millisecond, Max: time.Second}.Delay(attempt, 0)) != nil {
			break
		}
	}
	// Where nothing trustworthy was committed, the records already in the partition may
	// have been handled under another group or by an agent whose marks are unreadable: they
	// come as PriorUnknown, up to the end offset now.
	var ends kadm.ListedOffsets
	endsFor := func() (kadm.ListedOffsets, error) {
		if ends != nil {
			return ends, nil
		}
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		var lerr error
		ends, lerr = kadm.NewClient(cl).ListEndOffsets(lctx, c.opts.Topic)
		return ends, lerr
	}
	unknownUpTo := func(topic string, p int32) (int64, bool) {
		e, err := endsFor()
		if err != nil {
			c.log.Warn("list end offsets", zap.String("topic", topic), zap.Error(err))
			return 0, false
		}
		lo, ok := e.Lookup(topic, p)
		if !ok || lo.Err != nil {
			return 0, false
		}
		return lo.Offset, true
	}
	for topic, ps := range parts {
		for _, p := range ps {
			tp := topicPartition{topic, p}
			if err != nil {
				failed[tp] = true
				continue
			}
			r, ok := resps.Lookup(topic, p)
			if ok && r.Err != nil {
				c.log.Warn("fetch committed offset", zap.String("topic", topic), zap.Int32("partition", p), zap.Error(r.Err))
				failed[tp] = true
				continue
			}
			if !ok || r.At < 0 {
				// Nothing committed: a new group. From the latest offset nothing old is
				// read; from the earliest, what is already there is unknown.
				end, ok := unknownUpTo(topic, p)
				if !ok {
					failed[tp] = true
					continue
				}
				known[tp] = assigned{offset: -1, unknownBelow: end}
				continue
			}
			prog, ours, derr := decodeProgress(r.At, r.Metadata)
			a := assigned{offset: r.At, meta: r.Metadata, progress: prog}
			if derr != nil {
				c.log.Warn("unreadable progress metadata: records up to the end offset are checked in Port",
					zap.String("topic", topic), zap.Int32("partition", p), zap.Error(derr))
				end, ok := unknownUpTo(topic, p)
				if !ok {
					failed[tp] = true
					continue
				}
				a.progress, a.unknownBelow = progress{}, end
			}
			if ours && !prog.empty() && derr == nil {
				c.log.Info("earlier owner's progress", zap.String("topic", topic), zap.Int32("partition", p),
					zap.Int64("committed", r.At), zap.Int("started", len(prog.started)), zap.Int("finished", len(prog.finished)))
			}
			known[tp] = a
		}
	}
	return known, failed
}

// onRevoked hands partitions over only once no run of theirs can still be going here:
// runs not started yet do not start; those running get RevokeWait to end; what still runs
// then is cancelled (ErrNotOwned), and the revoke waits up to StopWait
// for it to be killed and closed in Port. Only then does it commit and release, so the new
// owner finds every run this member started either finished or closed in Port, and never
// starts one that is still running here. The group's rebalance timeout covers all of it.
func (c *Consumer) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	if len(revoked) == 0 {
		return // cooperative rebalances call this with nothing revoked
	}
	c.forgetUnknownPrior(revoked)
	c.ledger.revoking(revoked)
	c.log.Info("partitions revoked", zap.Any("partitions", revoked))
	wctx, cancelWait := context.WithTimeout(ctx, c.opts.RevokeWait)
	done := c.waitReleasable(wctx, revoked)
	cancelWait()
	if !done {
		c.log.Warn("runs of revoked partitions still going after the revoke wait; cancelling them",
			zap.Duration("waited", c.opts.RevokeWait), zap.Int("runs", c.holding(revoked)))
		c.ledger.stopRuns(revoked)
		sctx, cancelStop := context.WithTimeout(ctx, c.opts.StopWait)
		if !c.waitReleasable(sctx, revoked) {
			c.log.Error("cancelled runs of revoked partitions not closed in time; releasing them uncommitted",
				zap.Duration("waited", c.opts.StopWait), zap.Int("runs", c.holding(revoked)))
		}
		cancelStop()
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c.commit(cctx)
	c.ledger.release(revoked)
}

// waitReleasable blocks until parts may be released: the runs hold none of theirs that may
// still run or is being closed, and the ledger no record still being handled (polled and
// not yet a run, or whose handler has not returned: what the runs cannot know of). It
// reports whether they got there before ctx ended.
func (c *Consumer) waitReleasable(ctx context.Context, parts map[string][]int32) bool {
	for c.opts.Runs != nil {
		changed := c.opts.Runs.Changed() // before the count: no change between them is missed
		if c.holding(parts) == 0 {
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return false
		}
	}
	return c.ledger.waitFinished(ctx, parts)
}

// holding is how many runs of parts the runs hold (0 without Runs).
func (c *Consumer) holding(parts map[string][]int32) int {
	if c.opts.Runs == nil {
		return 0
	}
	n := 0
	for topic, ps := range parts {
		for _, p := range ps {
			n += c.opts.Runs.Holding(topic, p)
		}
	}
	return n
}

// onLost releases without committing: another member may already own these partitions, so
// their runs still going here are cancelled.
func (c *Consumer) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	c.log.Warn("partitions lost", zap.Any("partitions", lost))
	c.forgetUnknownPrior(lost)
	c.ledger.release(lost)
	c.joined.Store(false)
}

// Close releases the client when Run was never called.
func (c *Consumer) Close() { c.cl.Close() }

// Unstarted is the oldest message of an owned partition whose run has not started.
type Unstarted struct {
	Offset    int64     // -1: unknown (nothing polled, nothing committed)
	Timestamp time.Time // zero when the record was not fetched yet
}

// Unstarted returns, per partition this member owns, the oldest message whose run has not
// started: what the age of the waiting work is measured from (LagCollector).
func (c *Consumer) Unstarted() map[int32]Unstarted { return c.ledger.unstarted() }

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
	// MaxDecompressBatchBytes bounds what one fetched batch may decompress to (0: 16 MiB); a
	// batch past it, or one that does not decompress, is skipped and OnSkippedBatch told
	// (see skipBatches).
	MaxDecompressBatchBytes int
	OnSkippedBatch          func(SkippedBatch)
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
	if opts.MaxDecompressBatchBytes <= 0 {
		opts.MaxDecompressBatchBytes = defaultMaxDecompressBatchBytes
	}
	if opts.OnSkippedBatch == nil {
		opts.OnSkippedBatch = func(SkippedBatch) {}
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
	kopts = append(kopts, kgo.WithDecompressor(newBoundedDecompressor(opts.MaxDecompressBatchBytes)))
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

// Package consumer owns the agent's place in the Kafka consumer group: it polls only as many
// run messages as the pool has free slots, hands each to a handler, and commits a partition's
// offset only up to its oldest unfinished message, for partitions it still owns.
package consumer

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
)

// Slots is the pool capacity the consumer polls for.
type Slots interface {
	// Reserve blocks until at least one slot is free and takes up to limit of them.
	Reserve(ctx context.Context, limit int) (int, error)
	Release(n int)
}

// Handler processes one record: it decides the record's run and ends the ticket with
// Release (finished, or left for the next holder; a ticket not released when the handler
// returns is left). ctx ends with Run's workCtx; the ticket says when the run's partition
// goes to another member (Handover) and when its command must stop (Stopped).
type Handler func(ctx context.Context, t *Ticket)

type Options struct {
	Brokers       []string
	Topic         string
	Group         string
	StartOffset   string // latest | earliest
	GroupProtocol string // classic | consumer (KIP-848)
	ClientOpts    []kgo.Opt
	// ClientHooks, when set, makes the hooks of each Kafka client the member makes (a
	// rejoin under a new member id makes another): hooks that keep one client's state, as
	// kprom's metrics do, are made anew rather than shared.
	ClientHooks func() []kgo.Hook
	Slots       Slots
	MaxPoll     int           // records per poll at most; 0 -> 64
	CommitEvery time.Duration // 0 -> 1s
	// SessionTimeout is the group's session timeout (classic groups; KIP-848 groups use the
	// broker's group.consumer.session.timeout.ms); 0 -> 15s.
	SessionTimeout time.Duration
	// Fence: a member that cannot confirm its membership for Fence/2 stops its runs, and
	// renews none, so they are all dead at Fence (the agent gives each exec shim 3/8 of it).
	// It must be below SessionTimeout: no other member gets the partition before that.
	// 0 -> 2/3 of it.
	Fence time.Duration
	// Drain is how long after leaving the group this member may still act on its runs
	// (shutdownTimeout, the kill grace, the closing budget); 0 -> 2m. Other members wait
	// Drain + Fence + LeaseMargin (the leases' bound, in the handover's commit) before they
	// decide a run it holds: by then its commands are dead, also if it froze meanwhile.
	Drain time.Duration
	// LeaseMargin is added to the leases' bound for requests under way and clocks that do
	// not run at quite the same rate; 0 -> 10s.
	LeaseMargin time.Duration
	// HistoryAge is how long run ids stay in a partition's history (security.maxMessageAge:
	// older messages are looked up in Port anyway); 0 -> 10m.
	HistoryAge time.Duration
	// MaxFuture is how far ahead of this machine's clock a message's time may be (later ones
	// are refused): a partition whose earlier commits said nothing of the runs handled knows
	// its history from now + MaxFuture on; 0 -> 5m.
	MaxFuture time.Duration
	Logger    *zap.Logger
	OnLags    func(lags map[int32]int64) // every owned partition's lag, each commit tick
	// OnFatal is told at once of an error retrying cannot fix (Run returns it once every
	// handler has ended), so the caller can start its shutdown rather than wait for them.
	OnFatal func(error)
	// MaxDecompressBatchBytes bounds what one fetched batch may decompress to (0: 16 MiB); a
	// batch past it, or one that does not decompress, is skipped and OnSkippedBatch told
	// (see skipBatches).
	MaxDecompressBatchBytes int
	OnSkippedBatch          func(SkippedBatch)
}

// Consumer is one member of the group.
type Consumer struct {
	opts Options
	// cl is the client of this member's membership; a rejoin under a new member id swaps it
	// (rejoin.go), so it is read anew at each use, and the rebalance callbacks use theirs.
	cl     atomic.Pointer[kgo.Client]
	kopts  []kgo.Opt // what cl was made with, for the client of a rejoin
	rejoin rejoinState
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
	members      *members   // the group as this member sees it: the fence, others' leases
	// runsMu guards runs, the live tickets, and their mutable fields.
	runsMu sync.Mutex
	runs   map[*Ticket]struct{}
}

// New creates the Kafka client, which starts joining the group at once; records are
// handled only once Run polls.
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
	opts = withLeaseDefaults(opts)
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
	c := &Consumer{opts: opts, ledger: newLedger(opts.MaxFuture), log: opts.Logger, unknownPrior: map[topicPartition]bool{},
		members: newMembers(opts.Fence, opts.Drain), runs: map[*Ticket]struct{}{}}
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
		kgo.SessionTimeout(opts.SessionTimeout),
	}
	// One fetch holds less than 1.5 times what one batch may (README "Delivery").
	dec := newBoundedDecompressor(opts.MaxDecompressBatchBytes).withFetchBudget(int64(opts.MaxDecompressBatchBytes / 2))
	kopts = append(kopts, kgo.WithDecompressor(dec), kgo.WithHooks(dec),
		// A fetch session keeps the partitions in the order the broker last answered them,
		// so a partition whose batches spend every fetch's budget would stay first and
		// hold the others back; full requests rotate which partition comes first.
		kgo.DisableFetchSessions())
	if opts.GroupProtocol == "consumer" {
		kopts = append(kopts, kgo.Balancers(kgo.CooperativeStickyBalancer()), kgo.ServerSideBalancer())
	}
	c.kopts = append(kopts, opts.ClientOpts...)
	cl, err := c.newClient()
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	c.cl.Store(cl)
	return c, nil
}

// newClient makes a client of this member's options, with hooks of its own.
func (c *Consumer) newClient() (*kgo.Client, error) {
	opts := c.kopts
	if c.opts.ClientHooks != nil {
		opts = append(slices.Clip(opts), kgo.WithHooks(c.opts.ClientHooks()...))
	}
	return kgo.NewClient(opts...)
}

// Joined reports whether the member has joined the group (even with no partitions: a
// replica without partitions is a ready, idle standby).
func (c *Consumer) Joined() bool { return c.joined.Load() }

// Ping checks, with a client of opts that joins no group, that the brokers answer with the
// configured credentials and know the topic, so a wrong password fails at start with a
// clear error rather than a silent retry loop, and before the replica joins the group.
func Ping(ctx context.Context, opts []kgo.Opt, topic string) error {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	t := kmsg.NewMetadataRequestTopic()
	t.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("connect to kafka: %w", err)
	}
	for _, rt := range resp.Topics {
		if err := kerrOf(rt.ErrorCode); err != nil {
			return fmt.Errorf("topic %s: %w", topic, err)
		}
	}
	return nil
}

// Run consumes until ctx is done, then stops fetching and leaves the group at once: every
// partition is handed over, the runs this member took under its leases, which go on until
// their handlers end (under their own context, workCtx). Run returns once they have.
func (c *Consumer) Run(ctx, workCtx context.Context, handle Handler) error {
	var handlers sync.WaitGroup
	bg, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	var background sync.WaitGroup
	background.Go(func() { c.commitLoop(bg) })
	background.Go(func() { c.watchMembers(bg) })

	err := c.poll(ctx, workCtx, handle, &handlers)

	c.leave(ctx)
	handlers.Wait()
	stopBackground()
	background.Wait()
	c.client().Close()
	return err
}

// leave hands every partition over (onRevoked: the commit that leases this member's runs
// to it) and leaves the group, so their new owners get them now; from now on this member
// acts on its runs for Drain at most.
func (c *Consumer) leave(ctx context.Context) {
	c.members.leave()
	c.runsMu.Lock()
	for t := range c.runs { // those handed over before: their leases last from now on
		t.checkLasting()
	}
	c.runsMu.Unlock()
	leaveGroup(ctx, c.client(), c.log)
	c.joined.Store(false)
}

// leaveGroup has cl's member leave the group, for 30s at most whatever ctx says: a member
// that could not leave goes when its session ends.
func leaveGroup(ctx context.Context, cl *kgo.Client, log *zap.Logger) {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := cl.LeaveGroupContext(lctx); err != nil {
		log.Warn("leaving the group: the member id goes when its session ends", zap.Error(err))
	}
}

// memberID is this member's id in the group now ("" before it has one).
func (c *Consumer) memberID() string {
	id, _ := c.client().GroupMetadata()
	return id
}

// client is the Kafka client of this member's membership now.
func (c *Consumer) client() *kgo.Client { return c.cl.Load() }

// Close releases the client when Run was never called.
func (c *Consumer) Close() { c.client().Close() }

// Unstarted is the oldest message of an owned partition whose run has not started.
type Unstarted struct {
	Offset    int64     // -1: unknown (nothing polled, nothing committed)
	Timestamp time.Time // zero when the record was not fetched yet
}

// Unstarted returns, per partition this member owns, the oldest message whose run has not
// started: what the age of the waiting work is measured from (LagCollector).
func (c *Consumer) Unstarted() map[int32]Unstarted { return c.ledger.unstarted() }

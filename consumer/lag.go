// The group's lag, measured from the broker: the group's committed offsets against the
// topic's end offsets, for every partition of the topic, whichever replica owns it (or
// none). The consumer's own view freezes exactly when it matters: it polls only for free
// slots, so a full pool stops its updates.
//
// Also what a user feels, the age of the oldest message whose run has not started, for the
// partitions this replica owns (only the owner knows which runs started): lag_age.go.

package consumer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
)

type LagOptions struct {
	Client      *kgo.Client // a client of its own (no group), closed by the caller
	Topic       string
	Group       string
	StartOffset string // the group's reset policy: with "earliest", nothing committed means the whole log waits
	// Owned returns the partitions this replica owns with their oldest unstarted message; nil:
	// none (consumer_lag_seconds is then not exported by this replica).
	Owned    func() map[int32]Unstarted
	Interval time.Duration // between refreshes; 0 -> 5s
	Logger   *zap.Logger
	Now      func() time.Time // tests
	// MaxDecompressBatchBytes bounds a batch read for its timestamp, as the consumer's
	// (0: its default): a batch past it gives no age.
	MaxDecompressBatchBytes int
}

// LagCollector is a prometheus.LagCollector of the last refresh's figures: a scrape never waits
// for the broker.
type LagCollector struct {
	opts    LagOptions
	adm     *kadm.Client
	dec     kgo.Decompressor // bounded as the consumer's
	lagDesc *prometheus.Desc
	ageDesc *prometheus.Desc
	errDesc *prometheus.Desc

	mu     sync.Mutex
	lags   map[int32]int64
	ages   map[int32]float64
	failed bool
	// stamps caches the timestamp read for an offset, per partition: it never changes, and
	// the oldest waiting message stays the same for as long as the pool is full.
	stamps map[int32]lagStamp
}

type lagStamp struct {
	offset int64
	at     time.Time
}

func NewLagCollector(opts LagOptions) *LagCollector {
	if opts.Interval <= 0 {
		opts.Interval = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	labels := []string{"topic", "partition"}
	return &LagCollector{
		opts: opts,
		adm:  kadm.NewClient(opts.Client),
		dec:  newBoundedDecompressor(opts.MaxDecompressBatchBytes),
		lagDesc: prometheus.NewDesc("port_runner_consumer_lag",
			"Messages of the topic not yet committed by the group, per partition (from the broker; every replica exports every partition).", labels, nil),
		ageDesc: prometheus.NewDesc("port_runner_consumer_lag_seconds",
			"Age of the oldest message whose run has not started, per partition this replica owns (0: none waits).", labels, nil),
		errDesc: prometheus.NewDesc("port_runner_consumer_lag_refresh_failed",
			"1 when the last read of the group's lag from the broker failed (the lag shown is older).", nil, nil),
		lags:   map[int32]int64{},
		ages:   map[int32]float64{},
		stamps: map[int32]lagStamp{},
	}
}

// Run refreshes the figures every Interval until ctx ends.
func (c *LagCollector) Run(ctx context.Context) {
	t := time.NewTicker(c.opts.Interval)
	defer t.Stop()
	for {
		if err := c.Refresh(ctx); err != nil && ctx.Err() == nil {
			c.opts.Logger.Warn("consumer lag: cannot read offsets from the broker", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Refresh reads the offsets once and replaces the figures.
func (c *LagCollector) Refresh(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, c.opts.Interval+5*time.Second)
	defer cancel()
	lags, ends, err := c.readLags(rctx)
	if err != nil {
		c.mu.Lock()
		c.failed = true
		c.mu.Unlock()
		return err
	}
	var ages map[int32]float64
	if c.opts.Owned != nil {
		ages = c.readAges(rctx, c.opts.Owned(), ends)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lags, c.ages, c.failed = lags, ages, false
	for p := range c.stamps {
		if _, ok := ages[p]; !ok {
			delete(c.stamps, p)
		}
	}
	return nil
}

// readLags returns each partition's lag and end offset.
func (c *LagCollector) readLags(ctx context.Context) (map[int32]int64, map[int32]int64, error) {
	endOffsets, err := c.adm.ListEndOffsets(ctx, c.opts.Topic)
	if err != nil {
		return nil, nil, fmt.Errorf("list end offsets of %s: %w", c.opts.Topic, err)
	}
	committed, err := fetchGroupOffsets(ctx, c.opts.Client, c.opts.Group, c.opts.Topic)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return nil, nil, fmt.Errorf("fetch committed offsets of group %s: %w", c.opts.Group, err)
	}
	var starts kadm.ListedOffsets
	lags, ends := map[int32]int64{}, map[int32]int64{}
	var perr error
	endOffsets.Each(func(lo kadm.ListedOffset) {
		if lo.Topic != c.opts.Topic {
			return
		}
		if lo.Err != nil {
			perr = errors.Join(perr, fmt.Errorf("end offset of %s/%d: %w", lo.Topic, lo.Partition, lo.Err))
			return
		}
		ends[lo.Partition] = lo.Offset
		if r, ok := committed.Lookup(lo.Topic, lo.Partition); ok && r.Err == nil && r.At >= 0 {
			lags[lo.Partition] = max(lo.Offset-r.At, 0)
			return
		}
		// Nothing committed: from "latest" the group will read only what comes after it
		// joins, so nothing is behind yet; from "earliest" the whole log is.
		if c.opts.StartOffset != "earliest" {
			lags[lo.Partition] = 0
			return
		}
		if starts == nil {
			if starts, err = c.adm.ListStartOffsets(ctx, c.opts.Topic); err != nil {
				perr = errors.Join(perr, fmt.Errorf("list start offsets of %s: %w", c.opts.Topic, err))
				starts = kadm.ListedOffsets{}
			}
		}
		if so, ok := starts.Lookup(lo.Topic, lo.Partition); ok && so.Err == nil {
			lags[lo.Partition] = max(lo.Offset-so.Offset, 0)
		}
	})
	if len(ends) == 0 && perr != nil {
		return nil, nil, perr
	}
	return lags, ends, nil
}

// Describe sends nothing: the partitions come and go, so the collector is unchecked.
func (c *LagCollector) Describe(chan<- *prometheus.Desc) {}

func (c *LagCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for p, lag := range c.lags {
		ch <- prometheus.MustNewConstMetric(c.lagDesc, prometheus.GaugeValue, float64(lag), c.opts.Topic, strconv.Itoa(int(p)))
	}
	for p, age := range c.ages {
		ch <- prometheus.MustNewConstMetric(c.ageDesc, prometheus.GaugeValue, age, c.opts.Topic, strconv.Itoa(int(p)))
	}
	failed := 0.0
	if c.failed {
		failed = 1
	}
	ch <- prometheus.MustNewConstMetric(c.errDesc, prometheus.GaugeValue, failed)
}

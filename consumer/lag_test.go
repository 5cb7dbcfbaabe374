package consumer_test

import (
	"context"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/port-runner/port-runner/consumer"
	"github.com/port-runner/port-runner/test/harness"
	"github.com/port-runner/port-runner/test/harness/bomb"
)

// produce writes n records in one compressed batch with the given timestamps.
func produce(t *testing.T, c *harness.Broker, topic string, stamps []time.Time) {
	t.Helper()
	cl := c.Client(t, kgo.ProducerBatchCompression(kgo.ZstdCompression()), kgo.ProducerLinger(50*time.Millisecond),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var recs []*kgo.Record
	for i, ts := range stamps {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: 0, Value: []byte("m" + strconv.Itoa(i)), Timestamp: ts})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func collector(t *testing.T, c *harness.Broker, topic, group, start string, owned map[int32]consumer.Unstarted, now time.Time) *consumer.LagCollector {
	t.Helper()
	col := consumer.NewLagCollector(consumer.LagOptions{Client: c.Client(t), Topic: topic, Group: group, StartOffset: start,
		Owned: func() map[int32]consumer.Unstarted { return owned }, Now: func() time.Time { return now }})
	if err := col.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	return col
}

func gather(t *testing.T, col *consumer.LagCollector) string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(col)
	n, err := testutil.GatherAndCount(reg)
	if err != nil || n == 0 {
		t.Fatalf("gather: %d series, %v", n, err)
	}
	mfs, _ := reg.Gather()
	var b strings.Builder
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			b.WriteString(mf.GetName())
			for _, l := range m.Label {
				b.WriteString(" " + l.GetName() + "=" + l.GetValue())
			}
			b.WriteString(" " + strconv.FormatFloat(m.GetGauge().GetValue(), 'f', -1, 64) + "\n")
		}
	}
	return b.String()
}

// Lag is the end offset minus the group's commit, for every partition (owned here or
// not); with nothing committed it follows the reset policy. The age of the oldest
// unstarted message comes from the record itself (read from the leader, decompressed)
// when the consumer has not fetched it.
func TestLagCollector(t *testing.T) {
	c := harness.NewBroker(t)
	topic := c.Topic(t, 2)
	group := c.Group(t)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	var stamps []time.Time
	for i := range 5 {
		stamps = append(stamps, t0.Add(time.Duration(i)*time.Second))
	}
	produce(t, c, topic, stamps) // partition 0: offsets 0-4; partition 1: empty

	// Nothing committed yet.
	if got := gather(t, collector(t, c, topic, group, "earliest", nil, time.Now())); !strings.Contains(got, "port_runner_consumer_lag partition=0 topic="+topic+" 5\n") ||
		!strings.Contains(got, "port_runner_consumer_lag partition=1 topic="+topic+" 0\n") || strings.Contains(got, "consumer_lag_seconds") {
		t.Errorf("earliest, nothing committed:\n%s", got)
	}
	if got := gather(t, collector(t, c, topic, group, "latest", nil, time.Now())); !strings.Contains(got, "port_runner_consumer_lag partition=0 topic="+topic+" 0\n") {
		t.Errorf("latest, nothing committed:\n%s", got)
	}

	adm := kadm.NewClient(c.Client(t))
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: topic, Partition: 0, At: 2, LeaderEpoch: -1})
	if _, err := adm.CommitOffsets(context.Background(), group, offs); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(time.Minute)
	owned := map[int32]consumer.Unstarted{
		0: {Offset: 3}, // not fetched by the consumer: read from the broker
		1: {Offset: 0}, // empty partition: nothing waits
	}
	got := gather(t, collector(t, c, topic, group, "earliest", owned, now))
	for _, want := range []string{
		"port_runner_consumer_lag partition=0 topic=" + topic + " 3\n",
		"port_runner_consumer_lag partition=1 topic=" + topic + " 0\n",
		"port_runner_consumer_lag_seconds partition=0 topic=" + topic + " 57\n", // offset 3 was stamped t0+3s
		"port_runner_consumer_lag_seconds partition=1 topic=" + topic + " 0\n",
		"port_runner_consumer_lag_refresh_failed 0\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("committed 2, owned, offset 3 waiting: no %q in\n%s", want, got)
		}
	}
	// A timestamp the consumer knows is used as it is.
	owned[0] = consumer.Unstarted{Offset: 3, Timestamp: t0.Add(50 * time.Second)}
	if got := gather(t, collector(t, c, topic, group, "earliest", owned, now)); !strings.Contains(got, "port_runner_consumer_lag_seconds partition=0 topic="+topic+" 10\n") {
		t.Errorf("known timestamp:\n%s", got)
	}
}

// A broker that cannot be read marks the figures stale instead of dropping them.
func TestLagCollectorRefreshFailure(t *testing.T) {
	c := harness.NewBroker(t)
	topic := c.Topic(t, 1)
	col := collector(t, c, topic, c.Group(t), "earliest", nil, time.Now())
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"), kgo.RequestRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	col.SetAdminClient(cl) // the broker goes away
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := col.Refresh(ctx); err == nil {
		t.Fatal("Refresh against a refused broker succeeded")
	}
	if got := gather(t, col); !strings.Contains(got, "port_runner_consumer_lag_refresh_failed 1\n") ||
		!strings.Contains(got, "port_runner_consumer_lag partition=0") {
		t.Errorf("after a failed refresh:\n%s", got)
	}
}

// The age of a message the consumer has not fetched is read from its batch's header when
// the batch starts with it: a decompression bomb waiting at the head of a partition is not
// decompressed (through kgo.DefaultDecompressor, bounded at 2 GiB, a 64 MiB bomb cost the
// collector 359 MiB of allocations), and still has an age. A batch that starts before the
// offset is decompressed within MaxDecompressBatchBytes (TestLagCollector, offset 3).
func TestLagCollectorReadsABombsAgeFromItsHeader(t *testing.T) {
	c := harness.NewBroker(t)
	topic := c.Topic(t, 1)
	batch, err := bomb.Batch([]byte("bomb"), 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	at, err := bomb.Produce(ctx, c.Client(t), topic, 0, batch)
	if err != nil {
		t.Fatal(err)
	}
	var owned atomic.Pointer[map[int32]consumer.Unstarted]
	owned.Store(&map[int32]consumer.Unstarted{})
	col := consumer.NewLagCollector(consumer.LagOptions{Client: c.Client(t), Topic: topic, Group: c.Group(t), StartOffset: "earliest",
		Owned: func() map[int32]consumer.Unstarted { return *owned.Load() }, MaxDecompressBatchBytes: 8 << 20})
	if err := col.Refresh(ctx); err != nil { // connections and metadata: not what is measured
		t.Fatal(err)
	}
	owned.Store(&map[int32]consumer.Unstarted{0: {Offset: at}})
	counted := &countingDecompressor{}
	counted.inner = col.SetDecompressor(counted)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := col.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if n := counted.calls.Load(); n != 0 {
		t.Errorf("the bomb's batch was decompressed %d times to read its age", n)
	}
	// The whole process's allocations (other tests' goroutines may still run): the bomb
	// decompressed whole is over 64 MiB.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
		t.Errorf("reading the age of a 64 MiB bomb allocated %d MiB", alloc>>20)
	}
	if got := gather(t, col); !strings.Contains(got, "port_runner_consumer_lag_seconds partition=0 topic="+topic+" ") {
		t.Errorf("no age for the bomb's offset:\n%s", got)
	}
}

type countingDecompressor struct {
	inner kgo.Decompressor
	calls atomic.Int32
}

func (c *countingDecompressor) Decompress(src []byte, codec kgo.CompressionCodecType) ([]byte, error) {
	c.calls.Add(1)
	return c.inner.Decompress(src, codec)
}

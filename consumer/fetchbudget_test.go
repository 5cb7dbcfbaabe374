package consumer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap/zaptest"

	"github.com/port-runner/port-runner/internal/runmsg"
	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/test/harness/bomb"
)

// Once one fetch's batches decompressed to the budget, the next is refused with a plain
// error (fetched again), never with ErrMaxDecompress (skipped), until the next fetch's
// answer is read; an uncompressed batch costs nothing.
func TestFetchBudget(t *testing.T) {
	const bound = 1 << 20
	d := newBoundedDecompressor(bound).withFetchBudget(bound)
	frame := func(size int64) []byte { return zstdRecords(t, size, zstd.WithWindowSize(1<<16)) }
	big := frame(bound * 6 / 10)
	for i := range 2 { // 0.6, then 1.2 of the budget
		if _, err := d.Decompress(big, kgo.CodecZstd); err != nil {
			t.Fatalf("batch %d, within the budget before it: %v", i+1, err)
		}
	}
	for i := range 2 {
		_, err := d.Decompress(big, kgo.CodecZstd)
		if !errors.Is(err, errFetchBudget) || errors.Is(err, kgo.ErrMaxDecompress) {
			t.Errorf("batch %d past the budget: %v, want errFetchBudget alone", i+3, err)
		}
	}
	if _, err := d.Decompress([]byte("plain"), kgo.CodecNone); err != nil {
		t.Errorf("an uncompressed batch past the budget: %v", err)
	}
	d.OnBrokerRead(kgo.BrokerMetadata{}, kmsg.Metadata.Int16(), 100, 0, 0, nil)
	if _, err := d.Decompress(big, kgo.CodecZstd); !errors.Is(err, errFetchBudget) {
		t.Errorf("after another request's answer: %v, want errFetchBudget still", err)
	}
	d.OnBrokerRead(kgo.BrokerMetadata{}, kmsg.Fetch.Int16(), 100, 0, 0, nil)
	if _, err := d.Decompress(frame(bound*9/10), kgo.CodecZstd); err != nil {
		t.Errorf("the next fetch's first batch: %v", err)
	}
}

// A fetch of many batches, each within the bound, is no longer held decompressed whole:
// each fetch decompresses within the budget plus a batch, the rest is fetched again (a
// partition whose first batch found the budget spent by another's included), and every
// record is handled once, none skipped.
func TestAFetchOfManyBatchesStaysWithinTheBudget(t *testing.T) {
	const bound, partitions, batches = 1 << 20, 3, 5
	kc := fakeCluster(t, partitions) // offset 0 of each: a record
	prod := producer(t, kc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	batch, err := bomb.Batch([]byte("k"), bound*9/10, zstd.WithWindowSize(1<<16)) // 900 KiB decompressed
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for p := range int32(partitions) {
		want = append(want, fmt.Sprintf("%d@0", p))
		for range batches { // offsets 1-5
			at, err := bomb.Produce(ctx, prod, testTopic, p, batch)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, fmt.Sprintf("%d@%d", p, at))
		}
		if err := prod.ProduceSync(ctx, &kgo.Record{Topic: testTopic, Partition: p, Value: []byte("after")}).FirstErr(); err != nil { // offset 6
			t.Fatal(err)
		}
		want = append(want, fmt.Sprintf("%d@%d", p, batches+1))
	}

	var mu sync.Mutex
	var handled []string
	var skipped []SkippedBatch
	var fetched, mostFetched int // decompressed bytes of the batches handed over, per fetch
	hooks := fetchHooks{
		read: func() { mu.Lock(); fetched = 0; mu.Unlock() },
		batch: func(m kgo.FetchBatchMetrics) {
			if m.NumRecords == 0 {
				return // refused: not handed over
			}
			mu.Lock()
			fetched += m.UncompressedBytes
			mostFetched = max(mostFetched, fetched)
			mu.Unlock()
		},
	}
	c := newTestConsumer(t, kc, "g-budget", Options{
		CommitEvery: 50 * time.Millisecond, MaxDecompressBatchBytes: bound, Logger: zaptest.NewLogger(t),
		OnSkippedBatch: func(b SkippedBatch) { mu.Lock(); skipped = append(skipped, b); mu.Unlock() },
		ClientOpts:     []kgo.Opt{kgo.WithHooks(hooks)},
	})
	runReleasing(t, c, func(tk *Ticket) {
		mu.Lock()
		handled = append(handled, fmt.Sprintf("%d@%d", tk.Record.Partition, tk.Record.Offset))
		mu.Unlock()
	})

	waitcond.For(t, "every record handled", 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled) >= len(want)
	})
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(handled)
	slices.Sort(want)
	if !slices.Equal(handled, want) {
		t.Errorf("handled %v, want %v", handled, want)
	}
	if len(skipped) != 0 {
		t.Errorf("skipped %+v, want none", skipped)
	}
	// Under the budget (half the bound) plus one batch.
	if mostFetched >= bound*3/2 {
		t.Errorf("one fetch handed over %d bytes decompressed, want under %d", mostFetched, bound*3/2)
	}
}

// A partition whose batches spend every fetch's budget holds no other back: records that
// reach the others meanwhile are handled long before its last. With fetch sessions, the
// broker kept answering it first, and the others' first batches found the budget spent in
// every fetch.
func TestOnePartitionsBatchesHoldNoOtherBack(t *testing.T) {
	const bound, bombs = 1 << 20, 60
	kc := fakeCluster(t, 3) // offset 0 of each: a record
	prod := producer(t, kc)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bomb900K, err := bomb.Batch([]byte("k"), bound*9/10, zstd.WithWindowSize(1<<16))
	if err != nil {
		t.Fatal(err)
	}
	for range bombs { // one to a fetch
		if _, err := bomb.Produce(ctx, prod, testTopic, 0, bomb900K); err != nil {
			t.Fatal(err)
		}
	}

	var mu sync.Mutex
	var order []string
	handled := func() int { mu.Lock(); defer mu.Unlock(); return len(order) }
	c := newTestConsumer(t, kc, "g-fair", Options{CommitEvery: 50 * time.Millisecond, MaxDecompressBatchBytes: bound, Logger: zaptest.NewLogger(t)})
	runReleasing(t, c, func(tk *Ticket) {
		mu.Lock()
		order = append(order, fmt.Sprintf("%d@%d", tk.Record.Partition, tk.Record.Offset))
		mu.Unlock()
	})
	waitcond.For(t, "the first records handled", 30*time.Second, func() bool { return handled() >= 10 })
	small, err := bomb.Batch([]byte("k"), 100)
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(1); p <= 2; p++ {
		if _, err := bomb.Produce(ctx, prod, testTopic, p, small); err != nil { // offset 1
			t.Fatal(err)
		}
	}
	waitcond.For(t, "every record handled", 60*time.Second, func() bool { return handled() >= bombs+5 })
	mu.Lock()
	defer mu.Unlock()
	for _, rec := range []string{"1@1", "2@1"} {
		if i := slices.Index(order, rec); i < 0 || i >= len(order)*2/3 {
			t.Errorf("record %s handled %dth of %d, want within the first two thirds: %v", rec, i+1, len(order), order)
		}
	}
}

// fetchHooks sees each fetch response read and each batch of it processed.
type fetchHooks struct {
	read  func()
	batch func(kgo.FetchBatchMetrics)
}

func (h fetchHooks) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == kmsg.Fetch.Int16() && err == nil {
		h.read()
	}
}

func (h fetchHooks) OnFetchBatchRead(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.FetchBatchMetrics) {
	h.batch(m)
}

// A handed-over record holds its own value, not the fetch or decompressed batch its bytes
// were slices of (a run holds its record while it runs), and no key or headers; a value
// bigger than any run message is left as it is rather than copied.
func TestDetachedRecordsHoldTheirOwnBytes(t *testing.T) {
	fetch := []byte("key|value|h1|the rest of the fetch")
	r := &kgo.Record{Key: fetch[0:3], Value: fetch[4:9], Headers: []kgo.RecordHeader{{Key: "a", Value: fetch[10:12]}}}
	detach(r)
	for i := range fetch {
		fetch[i] = 'x' // what the fetch held no longer shows through the record
	}
	if string(r.Value) != "value" || r.Key != nil || r.Headers != nil {
		t.Errorf("after the fetch changed: value %q, key %q, headers %v; want value alone", r.Value, r.Key, r.Headers)
	}
	huge := make([]byte, runmsg.DefaultMaxBytes+2)
	big := &kgo.Record{Value: huge[1:]}
	detach(big)
	if &big.Value[0] != &huge[1] {
		t.Error("a value bigger than any run message was copied")
	}
}

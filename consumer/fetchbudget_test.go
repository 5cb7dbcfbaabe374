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

	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/test/harness/bomb"
)

// Once one fetch's batches decompressed to the budget, the next is refused with a plain
// error (fetched again), never with ErrMaxDecompress (skipped); the first batch after a
// reset always passes; an uncompressed batch costs nothing.
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
	d.newFetch()
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
	// Under the budget (half the bound) plus one batch; twice that if a poll's reset falls
	// while the next fetch is read.
	if mostFetched > 3*bound {
		t.Errorf("one fetch handed over %d bytes decompressed, want at most %d", mostFetched, 3*bound)
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

// A handed-over record holds its own bytes, not the fetch or decompressed batch its bytes
// were slices of (a run holds its record while it runs).
func TestDetachedRecordsHoldTheirOwnBytes(t *testing.T) {
	fetch := []byte("key|value|h1|h2|the rest of the fetch")
	r := &kgo.Record{Key: fetch[0:3], Value: fetch[4:9], Headers: []kgo.RecordHeader{{Key: "a", Value: fetch[10:12]}, {Key: "b", Value: fetch[13:15]}, {Key: "c"}}}
	detach(r)
	for i := range fetch {
		fetch[i] = 'x' // what the fetch held no longer shows through the record
	}
	got := []string{string(r.Key), string(r.Value), string(r.Headers[0].Value), string(r.Headers[1].Value)}
	if want := []string{"key", "value", "h1", "h2"}; !slices.Equal(got, want) {
		t.Errorf("after the fetch changed: %q, want %q", got, want)
	}
	if r.Headers[2].Value != nil {
		t.Errorf("a header without a value got %q", r.Headers[2].Value)
	}
	r.Key = append(r.Key, '!') // a slice's growth must not write over the next one
	if string(r.Value) != "value" {
		t.Errorf("growing the key changed the value to %q", r.Value)
	}
}

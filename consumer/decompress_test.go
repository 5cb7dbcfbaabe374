package consumer

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap/zaptest"

	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/test/harness/bomb"
)

// A batch that does not decompress within MaxDecompressBatchBytes is skipped, reported and
// committed past, and its partition goes on: franz-go alone stops fetching the partition
// for good (a batch over its bound), or fetches the same batch forever (a zstd window over
// the bound, a batch that does not decompress).
func TestBatchPastTheDecompressionBoundIsSkipped(t *testing.T) {
	const bound = 1 << 20
	for _, tc := range []struct {
		name  string
		batch func() ([]byte, error)
	}{
		{"zstd output over the bound", func() ([]byte, error) {
			return bomb.Batch([]byte("bomb"), 4*bound, zstd.WithWindowSize(bound/4))
		}},
		{"zstd window over the bound", func() ([]byte, error) {
			return bomb.Batch([]byte("bomb"), 4*bound, zstd.WithWindowSize(4*bound))
		}},
		{"corrupt", func() ([]byte, error) {
			return bomb.Raw(bomb.CodecZstd, []byte("not zstd at all")), nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			batch, err := tc.batch()
			if err != nil {
				t.Fatal(err)
			}
			skipsAndGoesOn(t, batch, bound)
		})
	}
}

// skipsAndGoesOn produces a record, batch and a record to a partition, and checks that a
// consumer bounded at bound handles both records, reports the batch and commits past all.
func skipsAndGoesOn(t *testing.T, batch []byte, bound int) {
	kc := fakeCluster(t, 1) // offset 0: a record
	prod := producer(t, kc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	at, err := bomb.Produce(ctx, prod, testTopic, 0, batch) // offset 1
	if err != nil {
		t.Fatal(err)
	}
	if err := prod.ProduceSync(ctx, &kgo.Record{Topic: testTopic, Value: []byte("after")}).FirstErr(); err != nil { // offset 2
		t.Fatal(err)
	}

	var mu sync.Mutex
	var handled []int64
	var skipped []SkippedBatch
	group := "g-bomb"
	c := newTestConsumer(t, kc, group, Options{
		CommitEvery: 50 * time.Millisecond, MaxDecompressBatchBytes: bound, Logger: zaptest.NewLogger(t),
		OnSkippedBatch: func(b SkippedBatch) { mu.Lock(); skipped = append(skipped, b); mu.Unlock() },
	})
	runReleasing(t, c, func(tk *Ticket) {
		mu.Lock()
		handled = append(handled, tk.Record.Offset)
		mu.Unlock()
	})

	waitcond.For(t, "the record after the batch handled", 20*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(handled, at+1)
	})
	waitcond.For(t, "the partition committed past the record after the batch", 20*time.Second, func() bool {
		off, _ := committedMeta(t, kc, group, 0)
		return off == at+2
	})
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(handled) // records are handled at once, each by a goroutine of its own
	if !slices.Equal(handled, []int64{at - 1, at + 1}) {
		t.Errorf("handled offsets %v, want [%d %d]", handled, at-1, at+1)
	}
	want := SkippedBatch{Topic: testTopic, Partition: 0, First: at, Next: at + 1}
	if len(skipped) != 1 || skipped[0] != want {
		t.Errorf("skipped %+v, want [%+v]", skipped, want)
	}
}

// runReleasing runs c until the test ends, or stop, seeing each record and then finishing
// it; stop returns once Run has.
func runReleasing(t testing.TB, c *Consumer, see func(*Ticket)) (stop func()) {
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- c.Run(runCtx, context.Background(), func(_ context.Context, tk *Ticket) {
			see(tk)
			tk.Release(true)
		})
	}()
	stop = sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(stop)
	return stop
}

// Every codec decompresses up to the bound and fails past it, or on bytes that are not its
// format, with kgo.ErrMaxDecompress (what makes franz-go report the batch's offsets).
func TestBoundedDecompressor(t *testing.T) {
	const bound = 64 << 10
	d := newBoundedDecompressor(bound)
	xerial := func(src []byte) []byte { // the Java producer's snappy framing, 16 KiB blocks
		out := append(append([]byte{}, xerialMagic...), 0, 0, 0, 1, 0, 0, 0, 1)
		for b := range slices.Chunk(src, 16<<10) {
			block := s2.EncodeSnappy(nil, b)
			out = append(out, byte(len(block)>>24), byte(len(block)>>16), byte(len(block)>>8), byte(len(block)))
			out = append(out, block...)
		}
		return out
	}
	compress := func(codec kgo.CompressionCodecType, src []byte) []byte {
		c, err := kgo.DefaultCompressor(codecOf(codec))
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		out, got := c.Compress(&buf, src)
		if got != codec {
			t.Fatalf("compressed with %v, want %v", got, codec)
		}
		return bytes.Clone(out)
	}
	for _, codec := range []kgo.CompressionCodecType{kgo.CodecGzip, kgo.CodecSnappy, kgo.CodecLz4, kgo.CodecZstd} {
		at := bytes.Repeat([]byte("a"), bound)
		over := bytes.Repeat([]byte("a"), bound+1)
		if out, err := d.Decompress(compress(codec, at), codec); err != nil || !bytes.Equal(out, at) {
			t.Errorf("codec %v at the bound: %d bytes, %v", codec, len(out), err)
		}
		if _, err := d.Decompress(compress(codec, over), codec); !errors.Is(err, kgo.ErrMaxDecompress) {
			t.Errorf("codec %v past the bound: %v, want ErrMaxDecompress", codec, err)
		}
		if _, err := d.Decompress([]byte("\xff\xff\xff\xff garbage"), codec); !errors.Is(err, kgo.ErrMaxDecompress) {
			t.Errorf("codec %v on garbage: %v, want ErrMaxDecompress", codec, err)
		}
	}
	at, over := bytes.Repeat([]byte("b"), bound), bytes.Repeat([]byte("b"), bound+1)
	if out, err := d.Decompress(xerial(at), kgo.CodecSnappy); err != nil || !bytes.Equal(out, at) {
		t.Errorf("xerial snappy at the bound: %d bytes, %v", len(out), err)
	}
	if _, err := d.Decompress(xerial(over), kgo.CodecSnappy); !errors.Is(err, kgo.ErrMaxDecompress) {
		t.Errorf("xerial snappy past the bound: %v, want ErrMaxDecompress", err)
	}
	if plain := []byte("plain"); !bytes.Equal(first(d.Decompress(plain, kgo.CodecNone)), plain) {
		t.Error("an uncompressed batch is not passed as it is")
	}
}

func codecOf(c kgo.CompressionCodecType) kgo.CompressionCodec {
	switch c {
	case kgo.CodecGzip:
		return kgo.GzipCompression()
	case kgo.CodecSnappy:
		return kgo.SnappyCompression()
	case kgo.CodecLz4:
		return kgo.Lz4Compression()
	}
	return kgo.ZstdCompression()
}

func first(b []byte, _ error) []byte { return b }

// BenchmarkBoundedDecompressor is what a batch costs the consumer to decompress at the
// default bound (BENCHMARKS.md "Decompression bombs"): B/op is the memory it allocates.
func BenchmarkBoundedDecompressor(b *testing.B) {
	d := newBoundedDecompressor(defaultMaxDecompressBatchBytes)
	frame := func(size int64) []byte { return zstdRecords(b, size) }
	for _, c := range []struct {
		name string
		size int64
		ok   bool
	}{
		{"zstd/1MiB", 1 << 20, true},
		{"zstd/at-the-bound", defaultMaxDecompressBatchBytes - 64, true},
		{"zstd/900MiB-bomb", 900 << 20, false},
	} {
		src := frame(c.size)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := d.Decompress(src, kgo.CodecZstd); (err == nil) != c.ok {
					b.Fatalf("err = %v", err)
				}
			}
		})
	}
}

// zstdRecords is the compressed records of a bomb batch (see bomb.Batch) of size bytes,
// as the decompressor gets them.
func zstdRecords(tb testing.TB, size int64, opts ...zstd.EOption) []byte {
	batch, err := bomb.Batch([]byte("k"), size, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(batch); err != nil {
		tb.Fatal(err)
	}
	return rb.Records
}

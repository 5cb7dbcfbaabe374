package consumer

import (
	"bytes"
	"errors"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/port-runner/port-runner/test/harness/bomb"
)

// FuzzBoundedDecompressor: whatever bytes a fetched batch holds and whatever codec it
// claims, decompressing it never panics, never returns more than the bound, and every
// failure is kgo.ErrMaxDecompress (so franz-go reports the batch and the consumer skips it).
func FuzzBoundedDecompressor(f *testing.F) {
	const bound = 64 << 10
	for _, codec := range []kgo.CompressionCodecType{kgo.CodecGzip, kgo.CodecSnappy, kgo.CodecLz4, kgo.CodecZstd} {
		c, err := kgo.DefaultCompressor(codecOf(codec))
		if err != nil {
			f.Fatal(err)
		}
		for _, size := range []int{10, bound, bound + 1} {
			var buf bytes.Buffer
			out, _ := c.Compress(&buf, bytes.Repeat([]byte("x"), size))
			f.Add(uint8(codec), bytes.Clone(out))
		}
	}
	f.Add(uint8(kgo.CodecSnappy), append(append([]byte{}, xerialMagic...), 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 3, 0xff, 0xff, 0x03))
	f.Add(uint8(kgo.CodecNone), []byte("plain"))
	f.Add(uint8(7), []byte("no such codec"))
	d := newBoundedDecompressor(bound)
	f.Fuzz(func(t *testing.T, codec uint8, src []byte) {
		out, err := d.Decompress(src, kgo.CompressionCodecType(codec))
		switch {
		case err != nil && !errors.Is(err, kgo.ErrMaxDecompress):
			t.Fatalf("codec %d: %v, not ErrMaxDecompress", codec, err)
		case err == nil && codec != uint8(kgo.CodecNone) && len(out) > bound:
			t.Fatalf("codec %d: %d bytes, over the bound %d", codec, len(out), bound)
		}
	})
}

// FuzzFirstStamp: the lag collector reads record batch headers a broker sent; whatever they
// hold, reading the first timestamp at an offset never panics.
func FuzzFirstStamp(f *testing.F) {
	small, err := bomb.Batch([]byte("k"), 1<<20, zstd.WithWindowSize(1<<16))
	if err != nil {
		f.Fatal(err)
	}
	plain := (&kmsg.RecordBatch{Magic: 2, NumRecords: 1, FirstTimestamp: 1, MaxTimestamp: 2, Records: []byte{0x10, 0, 0, 0, 2, 'k', 2, 'v', 0}}).AppendTo(nil)
	f.Add(small, int64(0))
	f.Add(append(bytes.Clone(plain), small...), int64(1))
	f.Add(small[:40], int64(0))
	f.Add(plain, int64(-1))
	c := &LagCollector{opts: LagOptions{Topic: "t"}, dec: newBoundedDecompressor(64 << 10)}
	f.Fuzz(func(t *testing.T, batches []byte, off int64) {
		_, _, _ = c.firstStamp(&kmsg.FetchResponseTopicPartition{RecordBatches: batches}, off)
	})
}

package consumer

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
)

// boundedDecompressor decompresses a fetched batch into at most max bytes, and turns every
// failure into kgo.ErrMaxDecompress, which franz-go reports with the batch's offsets
// (kgo.ErrDecompressTooLarge) and answers by no longer fetching the partition until it is
// moved past the batch (skipBatches). franz-go's own bound (kgo.MaxDecompressBatchBytes)
// does the same for a batch that outgrows it, but a zstd frame whose window alone is over
// the bound, or a batch that does not decompress at all, is to it a plain fetch error: the
// partition fetches the same batch again and again and never goes on.
//
// With a fetch budget it also bounds what the batches of one fetch decompress to together:
// a fetch of many batches, each within max, is otherwise held whole (60 batches of 15 MiB
// are 107 KB on the wire). Once a fetch's batches reach the budget, the next is refused,
// not decompressed, with errFetchBudget, a plain error: franz-go hands over the
// partition's batches before it and fetches the partition again from it, or, when it is the
// partition's first in the fetch, reports the error and fetches it again from there. The
// budget starts again with each fetch response read (OnBrokerRead; the consumer fetches one
// at a time), so a fetch holds less than the budget plus one batch. The first partition of
// a fetch always gets its first batch, and fetch requests rotate their partitions
// (fetch sessions off), so every partition goes on.
type boundedDecompressor struct {
	max    int
	budget int64 // 0: none
	spent  atomic.Int64
	// Safe for concurrent DecodeAll. Without a reader it starts no goroutine and holds
	// nothing that needs closing.
	zstd *zstd.Decoder
	// franz-go's own, bounded at 2 GiB: used for snappy only once the blocks' claimed
	// lengths are checked against max.
	snappy kgo.Decompressor
}

// defaultMaxDecompressBatchBytes is the bound when none is given (config's default too).
const defaultMaxDecompressBatchBytes = 16 << 20

func newBoundedDecompressor(max int) *boundedDecompressor {
	if max <= 0 {
		max = defaultMaxDecompressBatchBytes
	}
	// The options are valid for any positive max: NewReader cannot fail with them.
	zd, _ := zstd.NewReader(nil, zstd.WithDecoderLowmem(true), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(max)))
	return &boundedDecompressor{max: max, zstd: zd, snappy: kgo.DefaultDecompressor()}
}

// errFetchBudget refuses a batch past the fetch budget; the batch is fetched again.
var errFetchBudget = errors.New("past what one fetch may decompress to: fetched again")

// withFetchBudget gives d a budget of what one fetch's batches may decompress to together.
func (d *boundedDecompressor) withFetchBudget(bytes int64) *boundedDecompressor {
	d.budget = bytes
	return d
}

// OnBrokerRead starts the budget again for a fetch response about to be processed
// (kgo.HookBrokerRead).
func (d *boundedDecompressor) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == kmsg.Fetch.Int16() && err == nil {
		d.spent.Store(0)
	}
}

func (d *boundedDecompressor) Decompress(src []byte, codec kgo.CompressionCodecType) ([]byte, error) {
	charged := d.budget > 0 && codec != kgo.CodecNone // an uncompressed batch is the fetch's own bytes
	if charged && d.spent.Load() >= d.budget {
		return nil, errFetchBudget
	}
	out, err := d.decompress(src, codec)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", kgo.ErrMaxDecompress, err)
	}
	if charged {
		d.spent.Add(int64(len(out)))
	}
	return out, nil
}

func (d *boundedDecompressor) decompress(src []byte, codec kgo.CompressionCodecType) ([]byte, error) {
	switch codec {
	case kgo.CodecNone:
		return src, nil
	case kgo.CodecZstd:
		// The decoder refuses a frame that declares more than max, or a window over it,
		// before allocating, and stops one that outgrows max while decoding.
		return d.zstd.DecodeAll(src, nil)
	case kgo.CodecGzip:
		r, err := gzip.NewReader(bytes.NewReader(src))
		if err != nil {
			return nil, err
		}
		return readAtMost(r, d.max)
	case kgo.CodecLz4:
		return readAtMost(lz4.NewReader(bytes.NewReader(src)), d.max)
	case kgo.CodecSnappy:
		// Snappy allocates the length a block claims up front: check the claims first.
		n, err := snappyLen(src)
		if err != nil {
			return nil, err
		}
		if n > int64(d.max) {
			return nil, fmt.Errorf("claims %d bytes", n)
		}
		return d.snappy.Decompress(src, codec)
	}
	return nil, fmt.Errorf("unknown compression codec %d", codec)
}

// readAtMost reads r whole, unless it holds more than max bytes.
func readAtMost(r io.Reader, max int) ([]byte, error) {
	out, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
	if err != nil {
		return nil, err
	}
	if len(out) > max {
		return nil, fmt.Errorf("more than %d bytes", max)
	}
	return out, nil
}

// xerialMagic starts a snappy batch in the Java producer's framing: a 16-byte header, then
// blocks, each a big-endian length and a raw snappy block.
var xerialMagic = []byte{130, 83, 78, 65, 80, 80, 89, 0}

// snappyLen is the length a snappy batch's blocks claim together.
func snappyLen(src []byte) (int64, error) {
	if len(src) <= 16 || !bytes.HasPrefix(src, xerialMagic) {
		n, err := s2.DecodedLen(src)
		return int64(n), err
	}
	var total int64
	for rest := src[16:]; len(rest) > 0; {
		if len(rest) < 4 {
			return 0, errors.New("malformed xerial framing")
		}
		size := int64(binary.BigEndian.Uint32(rest))
		rest = rest[4:]
		if size > int64(len(rest)) {
			return 0, errors.New("malformed xerial framing")
		}
		n, err := s2.DecodedLen(rest[:size])
		if err != nil {
			return 0, err
		}
		total += int64(n)
		rest = rest[size:]
	}
	return total, nil
}

// SkippedBatch is a fetched batch that does not decompress within
// Options.MaxDecompressBatchBytes (a decompression bomb, or corrupt): offsets [First, Next)
// of a partition, none of them handed to the handler.
type SkippedBatch struct {
	Topic       string
	Partition   int32
	First, Next int64
}

// tooLarge reports whether a fetch error is a batch that did not decompress within the
// bound, and which.
func tooLarge(err error) (*kgo.ErrDecompressTooLarge, bool) {
	var e *kgo.ErrDecompressTooLarge
	return e, errors.As(err, &e)
}

// skipBatches moves each partition past its batch that did not decompress within the bound.
// franz-go stops fetching such a partition until SetOffsets moves it past the batch: left
// alone, the partition would stall, and after a restart every replica would fetch the batch
// again. What runs the batch holds cannot be known without decompressing it: it is skipped
// whole, marked finished in the ledger so the commit moves past it, logged and reported.
// It runs while the poll holds rebalances back (BlockRebalanceOnPoll), so the partition is
// still ours, as SetOffsets wants.
func (c *Consumer) skipBatches(cl *kgo.Client, batches []*kgo.ErrDecompressTooLarge) {
	for _, b := range batches {
		if !c.ledger.owns(b.Topic, b.Partition) {
			continue
		}
		cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{b.Topic: {b.Partition: {Epoch: b.Epoch, Offset: b.NextOffset}}})
		if c.ledger.skip(b.Topic, b.Partition, b.Epoch, b.NextOffset) {
			c.syncPause(topicPartition{b.Topic, b.Partition})
		}
		c.log.Error("skipped a batch that does not decompress within kafka.maxDecompressBatchBytes (a decompression bomb, or corrupt): the runs in it are not executed",
			zap.String("topic", b.Topic), zap.Int32("partition", b.Partition),
			zap.Int64("firstOffset", b.Offset), zap.Int64("nextOffset", b.NextOffset),
			zap.Int("maxDecompressBatchBytes", c.opts.MaxDecompressBatchBytes))
		c.opts.OnSkippedBatch(SkippedBatch{Topic: b.Topic, Partition: b.Partition, First: b.Offset, Next: b.NextOffset})
	}
}

// skip records a skipped batch ending before next as finished, so the committed offset
// can pass it; pause says the partition is full (see track).
func (l *ledger) skip(topic string, partition int32, epoch int32, next int64) (pause bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	pl, ok := l.parts[topicPartition{topic, partition}]
	if !ok || next-1 <= pl.lastSeen {
		return false
	}
	return l.track(pl, entry{offset: next - 1, epoch: epoch, done: true})
}

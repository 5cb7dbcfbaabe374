package consumer

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Record batch attributes (Kafka's protocol): the timestamp type and the control flag.
const (
	attrLogAppendTime = 0x08
	attrControl       = 0x20
)

// firstStamp is the timestamp of the first record at or after off in a partition's fetch
// response (false: none there). A batch that starts at off or later gives it from its
// header, without being decompressed: a decompression bomb waiting at the head of a
// partition costs the collector nothing, however often it asks. Only a batch whose first
// records are before off (they started here) is decompressed, within the consumer's bound.
func (c *LagCollector) firstStamp(rp *kmsg.FetchResponseTopicPartition, off int64) (time.Time, bool, error) {
	for in := rp.RecordBatches; len(in) > 17; {
		end := int64(int32(binary.BigEndian.Uint32(in[8:]))) + 12 // the offset and length fields
		if end < 12 || end > int64(len(in)) || in[16] != 2 {
			break // a batch cut at the response's end, or an old message format
		}
		var b kmsg.RecordBatch
		if err := b.ReadFrom(in[:end]); err != nil {
			return time.Time{}, false, fmt.Errorf("record batch: %w", err)
		}
		in = in[end:]
		if b.FirstOffset+int64(b.LastOffsetDelta) < off || b.Attributes&attrControl != 0 || b.NumRecords == 0 {
			continue
		}
		if b.FirstOffset < off {
			return c.decodedStamp(rp, off)
		}
		if b.Attributes&attrLogAppendTime != 0 {
			return time.UnixMilli(b.MaxTimestamp), true, nil // the broker's time, for every record
		}
		return time.UnixMilli(b.FirstTimestamp), true, nil // the first record's
	}
	return c.decodedStamp(rp, off)
}

// decodedStamp reads the first record at or after off from the decompressed batches.
func (c *LagCollector) decodedStamp(rp *kmsg.FetchResponseTopicPartition, off int64) (time.Time, bool, error) {
	fp, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
		Offset: off, Topic: c.opts.Topic, Partition: rp.Partition,
	}, rp, c.dec, nil)
	if fp.Err != nil {
		return time.Time{}, false, fp.Err
	}
	for _, r := range fp.Records {
		if r.Offset >= off {
			return r.Timestamp, true, nil
		}
	}
	return time.Time{}, false, nil
}

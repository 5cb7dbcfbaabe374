// Package bomb writes decompression bombs to Kafka for tests: one zstd record batch, a few
// KiB on the wire, holding one record whose value decompresses to as many zero bytes as
// asked. The batch is compressed as a stream, so making a 900 MiB bomb costs the test a
// few MiB, never the 900. It imports nothing of the module, so the consumer's own tests,
// which the harness builds on, use it as the harness's process tests do.
package bomb

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CodecZstd is the compression bits of a record batch's attributes for zstd.
const CodecZstd = 4

// Batch returns a v2 record batch (the wire bytes a producer sends) of one record with key
// whose value is valueBytes zero bytes, compressed with zstd without a declared content
// size, so a consumer learns the size only by decompressing. opts tune the encoder (a
// window size, say).
func Batch(key []byte, valueBytes int64, opts ...zstd.EOption) ([]byte, error) {
	var compressed bytes.Buffer
	w, err := zstd.NewWriter(&compressed, append([]zstd.EOption{zstd.WithEncoderConcurrency(1)}, opts...)...)
	if err != nil {
		return nil, err
	}
	// A record: length, attributes, timestamp delta, offset delta, key, value, headers.
	var body []byte
	body = append(body, 0)              // attributes
	body = binary.AppendVarint(body, 0) // timestamp delta
	body = binary.AppendVarint(body, 0) // offset delta
	body = binary.AppendVarint(body, int64(len(key)))
	body = append(body, key...)
	body = binary.AppendVarint(body, valueBytes)
	length := int64(len(body)) + valueBytes + 1 // + the headers count
	if _, err := w.Write(append(binary.AppendVarint(nil, length), body...)); err != nil {
		return nil, err
	}
	zeros := make([]byte, 1<<20)
	for left := valueBytes; left > 0; {
		n := min(left, int64(len(zeros)))
		if _, err := w.Write(zeros[:n]); err != nil {
			return nil, err
		}
		left -= n
	}
	if _, err := w.Write(binary.AppendVarint(nil, 0)); err != nil { // no headers
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return Raw(CodecZstd, compressed.Bytes()), nil
}

// Raw returns a v2 record batch, said to hold one record, around records as they are,
// said to be compressed with codec (garbage, to make a batch that does not decompress).
func Raw(codec int16, records []byte) []byte {
	now := time.Now().UnixMilli()
	rb := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, Attributes: codec,
		FirstTimestamp: now, MaxTimestamp: now,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: 1, Records: records,
	}
	raw := rb.AppendTo(nil)
	rb.Length = int32(len(raw) - 12) // after the first offset and the length itself
	raw = rb.AppendTo(raw[:0])
	// The CRC (CRC-32C) covers everything after it: from the attributes, byte 21, on.
	crc := crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli))
	binary.BigEndian.PutUint32(raw[17:], crc)
	return raw
}

// Produce writes batch to the topic's partition as it is, through the partition's leader,
// and returns the offset the broker gave its first record.
func Produce(ctx context.Context, cl *kgo.Client, topic string, partition int32, batch []byte) (int64, error) {
	meta := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	meta.Topics = append(meta.Topics, mt)
	mresp, err := meta.RequestWith(ctx, cl)
	if err != nil {
		return 0, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	leader := int32(-1)
	var topicID [16]byte // produce v13 names the topic by ID
	for _, t := range mresp.Topics {
		topicID = t.TopicID
		for _, p := range t.Partitions {
			if p.Partition == partition {
				leader = p.Leader
			}
		}
	}
	if leader < 0 {
		return 0, fmt.Errorf("no leader for %s/%d", topic, partition)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 30_000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = topic, topicID
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl.Broker(int(leader)))
	if err != nil {
		return 0, fmt.Errorf("produce to %s/%d: %w", topic, partition, err)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return 0, fmt.Errorf("produce to %s/%d: %w", topic, partition, err)
			}
			return p.BaseOffset, nil
		}
	}
	return 0, fmt.Errorf("produce to %s/%d: empty response", topic, partition)
}

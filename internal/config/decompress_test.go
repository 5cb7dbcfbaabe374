package config

import (
	"strings"
	"testing"

	"github.com/port-runner/port-runner/internal/runmsg"
)

// kafka.maxDecompressBatchBytes is checked against what a producer's batch needs (a run
// message at its limit, a zstd window) and against the memory a batch at the bound costs.
func TestMaxDecompressBatchBytesBounds(t *testing.T) {
	if MinDecompressBatchBytes < runmsg.DefaultMaxBytes {
		t.Fatalf("MinDecompressBatchBytes = %d, under the run message limit %d", MinDecompressBatchBytes, runmsg.DefaultMaxBytes)
	}
	c, _ := validConfig(t)
	if c.Kafka.MaxDecompressBatchBytes != DefaultDecompressBatchBytes {
		t.Fatalf("default = %s, want %s", c.Kafka.MaxDecompressBatchBytes, ByteSize(DefaultDecompressBatchBytes))
	}
	for _, tc := range []struct {
		size ByteSize
		ok   bool
	}{
		{DefaultDecompressBatchBytes, true},
		{8 << 20, true},
		{64 << 20, true},
		{8<<20 - 1, false},
		{1 << 20, false},
		{64<<20 + 1, false},
		{1 << 30, false},
	} {
		c.Kafka.MaxDecompressBatchBytes = tc.size
		err := validate(c)
		refused := err != nil && strings.Contains(err.Error(), "kafka.maxDecompressBatchBytes: ")
		if refused == tc.ok {
			t.Errorf("maxDecompressBatchBytes %d: Validate = %v, want ok=%v", tc.size, err, tc.ok)
		}
	}
}

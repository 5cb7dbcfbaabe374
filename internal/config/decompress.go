package config

// Bounds of kafka.maxDecompressBatchBytes. At least what a producer's batch needs: a run
// message at its size limit (runmsg.DefaultMaxBytes, 1 MiB), and a zstd frame's window, up
// to 8 MiB at the compression levels producers use (a frame whose window is over the bound
// is refused whatever it holds). At most a quarter of the chart's 512 MiB memory limit,
// which the commands share: a batch at the bound costs the agent up to about twice it while
// it is read (BENCHMARKS.md "Decompression bombs").
const (
	MinDecompressBatchBytes     = 8 << 20
	MaxDecompressBatchBytes     = 128 << 20
	DefaultDecompressBatchBytes = 16 << 20
)

package config

// Bounds of kafka.maxDecompressBatchBytes. At least what a producer's batch needs: a run
// message at its size limit (runmsg.DefaultMaxBytes, 1 MiB), and a zstd frame's window, up
// to 8 MiB at the compression levels producers use (a frame whose window is over the bound
// is refused whatever it holds). At most 64 MiB: a batch at the bound takes up to about three
// times it of the agent's heap while it is read (BENCHMARKS.md "Decompression bombs"), and
// the chart's 512 MiB memory limit is shared with the commands.
const (
	MinDecompressBatchBytes     = 8 << 20
	MaxDecompressBatchBytes     = 64 << 20
	DefaultDecompressBatchBytes = 16 << 20
)

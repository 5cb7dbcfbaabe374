package reporter

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// BenchmarkMask100kLines is what masking costs for 100,000 lines of a command's output
// (BENCHMARKS.md "Masking"); one op is the whole 100,000 lines through a run's log:
//   - addmask: 100,000 distinct 1 KB ::add-mask:: lines (a command flooding the masker);
//   - output/masks=N: 100,000 ~66-byte lines with N values of 32 bytes the command masked
//     (N = maxCommandMasks: a command at the bound).
func BenchmarkMask100kLines(b *testing.B) {
	const lines = 100_000
	addMask := make([]byte, 0, lines*1040)
	for i := range lines {
		addMask = fmt.Appendf(addMask, "::add-mask::%07d-%s\n", i, strings.Repeat("k", 1016))
	}
	b.Run("addmask", func(b *testing.B) { benchLog(b, nil, addMask) })
	var output []byte
	for i := range lines {
		output = fmt.Appendf(output, "2026-01-02T03:04:05Z step %06d: compiling package github.com/x/y/z\n", i)
	}
	for _, n := range []int{0, 5, maxCommandMasks} {
		var masks []byte
		for i := range n {
			masks = fmt.Appendf(masks, "::add-mask::secret-%04d-abcdefghijklmnopqrstu\n", i)
		}
		b.Run(fmt.Sprintf("output/masks=%d", n), func(b *testing.B) { benchLog(b, masks, output) })
	}
}

// benchLog writes setup, then text in 32 KiB chunks (about one pipe read) into a new run's
// log per op; only text is timed. retained-B is the heap the run's log still holds after
// text (what the masker keeps), measured after a GC.
func benchLog(b *testing.B, setup, text []byte) {
	b.ReportAllocs()
	var ms runtime.MemStats
	retained := uint64(0)
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.HeapAlloc
		rl := New(nopAPI{}, Options{MaxBytesPerRun: 1}).Start(context.Background(), "r_bench", nil)
		if _, err := rl.Write(setup); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for rest := text; len(rest) > 0; {
			n := min(len(rest), 32<<10)
			if _, err := rl.Write(rest[:n]); err != nil {
				b.Fatal(err)
			}
			rest = rest[n:]
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		retained = max(retained, ms.HeapAlloc-min(ms.HeapAlloc, before))
		if err := rl.Close(context.Background(), Outcome{Success: true}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(retained), "retained-B")
}

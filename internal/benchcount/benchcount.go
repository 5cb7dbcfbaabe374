// Package benchcount counts what the Go scheduler does for a piece of code, for benchmarks
// and tests that keep its per-run cost from growing unseen (BENCHMARKS.md): goroutines
// created, which no CPU profile names on its own.
package benchcount

import (
	"runtime/metrics"
	"testing"
)

const goroutinesCreated = "/sched/goroutines-created:goroutines"

// Goroutines is how many goroutines this process has created since it started.
func Goroutines() uint64 {
	s := []metrics.Sample{{Name: goroutinesCreated}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0 // a Go without the metric: counts nothing
	}
	return s[0].Value.Uint64()
}

// ReportGoroutines reports the goroutines created per op since start, a Goroutines reading
// taken before b's loop; call it after the loop.
func ReportGoroutines(b *testing.B, start uint64) {
	b.ReportMetric(float64(Goroutines()-start)/float64(b.N), "goroutines/op")
}

// FewestGoroutines runs f n times and returns the fewest goroutines one call created: other
// goroutines of the process (a test's, the runtime's) only ever add to a count, so the
// fewest is f's own.
func FewestGoroutines(n int, f func()) uint64 {
	fewest := ^uint64(0)
	for range n {
		start := Goroutines()
		f()
		fewest = min(fewest, Goroutines()-start)
	}
	return fewest
}

package reporter

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// Masking a line must cost memory about the line's size, whatever the command's
// ::add-mask:: values: Replace keeps one span per occurrence of every value, so 248 values
// "xx".."x{249}" over a 60 KiB line of x's allocate about 1.2 GB (and take 2.5 s) per line.
func TestMaskingOverlappingValuesBoundedMemory(t *testing.T) {
	t.Skip("not fixed: Replace needs a per-byte reach array instead of a span per occurrence, " +
		"which costs the common short line an allocation; see BENCHMARKS.md \"Masking\" before changing it")
	rl := New(&recordAPI{}, Options{}).Start(context.Background(), "r_replacecost", nil)
	for k := 2; k < 250; k++ {
		write(t, rl, fmt.Sprintf("::add-mask::%s\n", strings.Repeat("x", k)))
	}
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	write(t, rl, strings.Repeat("x", 60<<10)+"\n")
	runtime.ReadMemStats(&b)
	if mb := (b.TotalAlloc - a.TotalAlloc) >> 20; mb > 64 {
		t.Errorf("masking one 60 KiB line allocated %d MB", mb)
	}
	closeRun(t, rl, Outcome{Success: true})
}

package reporter

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// Masking a line must cost memory about the line's size, whatever the command's
// ::add-mask:: values: with a span kept per occurrence of every value, 248 values
// "xx".."x{249}" over a 60 KiB line of x's allocated about 1.2 GB (and took 2.5 s) per line,
// enough for a command to have the agent killed for its memory. Such a line goes masked whole.
func TestMaskingOverlappingValuesBoundedMemory(t *testing.T) {
	api := &recordAPI{}
	rl := New(api, Options{}).Start(context.Background(), "r_replacecost", nil)
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
	if sent := api.all(); strings.Contains(sent, "xx") || !strings.Contains(sent, "***\n") {
		t.Errorf("the line of x's went as:\n%.300s", sent)
	}
}

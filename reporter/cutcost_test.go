package reporter

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// A line past maxLineBytes is cut off any secret across the cut; a command that masks "xx"
// and prints x's without a newline makes every occurrence overlap the next. Finding where
// to cut must stay about as cheap as masking the line (README "What Port sees"): it once
// walked back one byte per step, each step searching every value, and cut one byte off,
// so a few hundred bytes held the run's log (and its lock) for more than ten minutes.
func TestCutThroughOverlappingSecretsIsCheap(t *testing.T) {
	var masks strings.Builder
	masks.WriteString("::add-mask::xx\n")
	for i := range 200 { // values that never match, each costing every step a search
		fmt.Fprintf(&masks, "::add-mask::%03d%s\n", i, strings.Repeat("y", 297))
	}
	sent := sendLongLine(t, "r_cutcost", masks.String())
	if n := strings.Count(sent, "***\n"); n > 8 {
		t.Errorf("the output went as %d lines, want at most 8 of up to %d bytes", n, maxLineBytes)
	}
}

// The same with many values that overlap one another ("xx" .. "x{249}", within the
// command's ::add-mask:: bounds), where masking each piece goes past its overlap budget:
// the output is still taken, and no part of a value is sent.
func TestCutThroughManyOverlappingSecretsIsCheap(t *testing.T) {
	var masks strings.Builder
	for k := 2; k < 250; k++ {
		fmt.Fprintf(&masks, "::add-mask::%s\n", strings.Repeat("x", k))
	}
	sendLongLine(t, "r_cutcost_many", masks.String())
}

// sendLongLine has a run write masks, then 256 KiB of x's as one line; it fails unless the
// line is taken within 20s (the old walk held it for more than ten minutes) and no "xx"
// is sent, and returns what was sent.
func sendLongLine(t *testing.T, runID, masks string) string {
	t.Helper()
	api := &recordAPI{}
	rl := New(api, Options{}).Start(context.Background(), runID, nil)
	write(t, rl, masks)
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		write(t, rl, strings.Repeat("x", 4*maxLineBytes)+"\n")
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("256 KiB of output not taken after %v", time.Since(start))
	}
	closeRun(t, rl, Outcome{Success: true})
	sent := api.all()
	if strings.Contains(sent, "xx") {
		t.Errorf("a masked value was sent:\n%.500s", sent)
	}
	return sent
}

package e2e_test

import (
	"strings"
	"testing"

	"github.com/port-runner/port-runner/test/harness"
)

// BenchmarkRequestsPerRun counts the Port requests one run costs (BENCHMARKS.md: 1 for a
// quiet run; at most 5s/flushInterval + 2 for a run printing 10,000 lines over 5s), with one
// agent, flushInterval 1s and no budget limit. The figure is requests/run; ns/op is the
// run's length, set by its command.
func BenchmarkRequestsPerRun(b *testing.B) {
	for _, tc := range []struct {
		name    string
		command string
		lines   int
		max     int
	}{
		{"quiet", `exit 0`, 0, 1},
		// 100 rounds of 100 lines and a 50ms pause: 10,000 lines over ~5s.
		{"10000-lines-over-5s", `r=0; while [ $r -lt 100 ]; do i=0; while [ $i -lt 100 ]; do echo "line $r.$i"; i=$((i+1)); done; r=$((r+1)); sleep 0.05; done`, 10000, 5/1 + 2},
		// The same with 100-byte lines: 1 MB in 5s is 200 KB per flushInterval, over the
		// default maxBatchBytes (64 KiB), so batches leave by size: bytes / maxBatchBytes
		// requests, not bounded by the interval (no bound checked, the figure is reported).
		{"10000-100B-lines-over-5s", `pad=$(printf '%090d' 0); r=0; while [ $r -lt 100 ]; do i=0; while [ $i -lt 100 ]; do echo "$pad $r.$i"; i=$((i+1)); done; r=$((r+1)); sleep 0.05; done`, 10000, 0},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := harness.New(b, 1)
			startReplicas(b, h, 1, 50, harness.Script(b, tc.command))
			var total int
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ids := produceBuilds(b, h, strings.ReplaceAll(tc.name, "-", "_"), i, 1)
				run := h.WaitClosed(b, ids[0])
				lines := -1 // the agent's summary line
				for _, l := range run.Logs {
					lines += strings.Count(l.Message, "\n") + 1
				}
				if run.Terminations != 1 || lines != tc.lines {
					b.Fatalf("run %s: %d terminations, %d lines before the summary, want 1 and %d", run.ID, run.Terminations, lines, tc.lines)
				}
				n := 0
				for _, r := range h.Emu.Requests() {
					if strings.Contains(r.Path, ids[0]) {
						n++
					}
				}
				if tc.max > 0 && n > tc.max {
					b.Errorf("run %s cost %d requests, want at most %d", run.ID, n, tc.max)
				}
				total += n
			}
			b.ReportMetric(float64(total)/float64(b.N), "requests/run")
		})
	}
}

package executor

import (
	"context"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/benchcount"
)

// A quiet run costs the executor one goroutine, with the shim or without: the one that copies
// its output, whose end tells that the command ended too; its process is watched on its own
// (a goroutine, a pidfd in the runtime's poller) only where it did not (see supervise). Each
// goroutine more is a start, a wake-up and an exit more per run (BENCHMARKS.md). The output's
// end often comes a few microseconds before the process is a zombie (its files close first),
// and then its watch is started after all: most runs under the C shim on a busy machine. So the
// fewest of many runs is what tells: one run that costs a single goroutine, which a watch
// started for every run would never show.
func TestQuietRunGoroutines(t *testing.T) {
	const quietRuns = 100 // some 7 in 10 watched at worst: 5 runs all were, 1 time in 6
	for name, prefix := range map[string][]string{"no shim": nil, "shim": {tinyShim}, "C shim": {cShim}} {
		t.Run(name, func(t *testing.T) {
			if len(prefix) == 1 && prefix[0] == "" {
				t.Skip("no C shim")
			}
			const fence = time.Minute
			renewals := NewRenewals(fence / 4)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan struct{})
			go func() { defer close(done); renewals.Run(ctx) }()
			defer func() { cancel(); <-done }()
			spec := Spec{Argv: []string{"/bin/true"}, Shim: prefix, Timeout: time.Hour, RunFile: []byte(`{"run":"r"}`),
				Fence: fence, Held: func() bool { return true }, Renewals: renewals, OnStart: func(int) {}}
			if len(prefix) == 0 {
				spec.Fence, spec.Held, spec.Renewals = 0, nil, nil
			}
			got := benchcount.FewestGoroutines(quietRuns, func() {
				if res := Run(ctx, spec, nil); !res.Success {
					t.Fatalf("run: %+v", res)
				}
			})
			if got > 1 {
				t.Errorf("a quiet run created %d goroutines, want 1 (its output's copy)", got)
			}
		})
	}
}

//go:build linux

package executor

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/benchcount"
)

// BenchmarkQuietRun is the executor's part of a quiet /bin/true run as the agent makes it:
// a cell of its RunsDir, sandboxed, under the C shim, with a fence renewed by the agent's
// Renewals, tracked by its Reaper, gated (its start mark: Spec.Gate), the caller's response
// file named at release. Its allocs/op, goroutines/op and, under strace, its syscalls per run
// are the executor's own cost per run.
//
//	go test -run='^$' -bench BenchmarkQuietRun -benchmem ./executor/
func BenchmarkQuietRun(b *testing.B) {
	if cShim == "" {
		b.Skip("no C shim")
	}
	runs, sb := sandboxedRuns(b)
	reaper, _, stopReaper := startHelperReaper()
	defer stopReaper()
	const fence = time.Minute
	renewals := NewRenewals(fence / 4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); renewals.Run(ctx) }()
	defer func() { cancel(); <-done }()
	held := func() bool { return true }
	spec := Spec{Argv: []string{"/bin/true"}, Shim: []string{cShim}, Timeout: time.Hour,
		Env: map[string]string{"PATH": os.Getenv("PATH")}, RunFile: []byte(`{"run":"r"}`),
		Fence: fence, Held: held, Renewals: renewals, Reaper: reaper, OnStart: func(int) {},
		Gate:      func() error { return nil },
		Isolation: Isolation{Sandbox: sb, Runs: runs}}
	b.ReportAllocs()
	goroutines := benchcount.Goroutines()
	for b.Loop() {
		dir, err := runs.NewRunDir()
		if err != nil {
			b.Fatal(err)
		}
		s := spec
		s.RunDir = dir
		if res := Run(ctx, s, nil); !res.Success {
			b.Fatalf("run: %+v", res)
		}
		if err := runs.ReleaseRunDir(dir, "response.json"); err != nil {
			b.Fatal(err)
		}
	}
	benchcount.ReportGoroutines(b, goroutines)
}

//go:build linux

package executor

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestAGatesWaitIsNotTheRunsDuration: a gate's wait (the agent's: the run's start mark on
// its way to Kafka, which may wait long for room in its partition's metadata) is no part of
// the run: Result.Duration, which Port's summary ("after ...") and run_duration_seconds
// give, is the preparation, the command and its output's delivery only. The gate holds for
// a fixed time here: that wait is what must not be counted, not a state waited for.
func TestAGatesWaitIsNotTheRunsDuration(t *testing.T) {
	const hold = 3 * time.Second // a slow start mark: the wait the Duration must leave out
	eachWay(t, func(t *testing.T, prefix []string) {
		marker := filepath.Join(t.TempDir(), "ran")
		var waited time.Duration
		began := time.Now()
		res, out := run(t, context.Background(), Spec{Argv: touch(marker)[1:], Shim: prefix,
			Gate: func() error {
				readied(t, prefix)
				t0 := time.Now()
				time.Sleep(hold)
				waited = time.Since(t0)
				return nil
			}})
		total := time.Since(began)
		if !res.Success || !exists(marker) {
			t.Fatalf("%+v (%q): want the command run", res, out)
		}
		// Whatever the machine's speed: Run took at most total, the gate at least waited.
		if res.Duration > total-waited {
			t.Errorf("Duration %v counts the gate's wait (%v of the %v Run took)", res.Duration, waited, total)
		}
	})
}

// Package waitcond is the tests' one way to wait for a condition: poll it until it holds or a
// deadline passes, never a fixed sleep standing in for synchronisation.
package waitcond

import (
	"testing"
	"time"
)

// poll is how often the condition is checked: short against the tests' deadlines, long
// enough not to load the machine.
const poll = 10 * time.Millisecond

// For polls cond until it holds and returns how long that took, or fails t once timeout has
// passed, naming what it waited for.
func For(t testing.TB, what string, timeout time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(poll)
	}
	return time.Since(start)
}

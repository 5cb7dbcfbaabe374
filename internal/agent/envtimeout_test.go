package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/runmsg"
)

// An env expression that never ends fails its run within the selectors' time limit instead
// of holding a slot, and its partition's commit, forever.
func TestEnvExpressionTimeout(t *testing.T) {
	act, err := newAction("spin", config.Action{Command: []string{"true"}, Env: map[string]string{"SPIN": "def f: f; f"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	run := runmsg.Run{ID: "r_spin", Action: "spin", Context: map[string]any{"runId": "r_spin"}}
	done := make(chan error, 1)
	go func() { // left spinning if the limit is missing: the test fails, the binary still exits
		_, _, err := act.spec(run)
		done <- err
	}()
	// Far past the limit, short of a stuck test.
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "SPIN") || !strings.Contains(err.Error(), "deadline") {
			t.Fatalf("spec = %v, want an error naming SPIN and the time limit", err)
		}
	case <-time.After(20 * runmsg.SelectorTimeout):
		t.Fatalf("an env expression that never ends still runs after %s", 20*runmsg.SelectorTimeout)
	}
}

package agent_test

import (
	"strings"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/metrics"
	"github.com/port-runner/port-runner/test/harness"
)

// A run Port ended while its command ran is listed among /status's finished runs as Port
// shows it (FAILURE) with the label that says why, so an on-call reading /status after the
// fact finds it was cancelled in Port, not that its command failed.
func TestStatusKeepsWhyARunCancelledInPortEnded(t *testing.T) {
	h := harness.New(t, 1)
	a := h.Start(t, h.Config(t, "port: {runStatusInterval: 1s}\nactions:\n  slow: {command: [sleep, \"300\"]}\n"))
	h.NewRun(t, "r_cancel", "slow")
	waitcond.For(t, "the command to run", 30*time.Second, func() bool {
		for _, r := range a.Status(t).Runs {
			if r.RunID == "r_cancel" && r.PID != 0 {
				return true
			}
		}
		return false
	})
	if err := h.Emu.CancelRun("r_cancel"); err != nil {
		t.Fatal(err)
	}
	var st metrics.Status
	waitcond.For(t, "the run among the finished ones", time.Minute, func() bool {
		st = a.Status(t)
		return len(st.Finished) == 1
	})
	if f := st.Finished[0]; f.RunID != "r_cancel" || f.Outcome != metrics.OutcomeFailure || !strings.Contains(f.Label, "ended in Port") {
		t.Errorf("/status finished = %+v, want r_cancel, failure, a label saying it was ended in Port", f)
	}
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
}

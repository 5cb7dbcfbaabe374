//go:build linux

package agent_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/waitcond"
)

// TestARunEndedInPortWhileHeldAtItsTakeNeverStarts: a run Port ended (a user set it to
// FAILURE) while its take was held for longer than the watch's interval never starts its
// command once the take succeeds: it ends as cancelled in Port, as one whose command ran.
func TestARunEndedInPortWhileHeldAtItsTakeNeverStarts(t *testing.T) {
	h, dir, a, refusing := heldWatchEnv(t, "")
	refusing.Store(true)
	h.NewRun(t, "r_held", "act")
	waitcond.For(t, "r_held's shim to wait for its go", 30*time.Second, func() bool { return len(gatedShims()) == 1 })
	if err := h.Emu.CancelRun("r_held"); err != nil {
		t.Fatal(err)
	}
	ended := time.Now()
	// The state waited for is the hold's length: longer than the interval after Port ended it.
	waitcond.For(t, "the hold to outlast the interval twice", 30*time.Second, func() bool { return time.Since(ended) > 2*watchInterval })
	refusing.Store(false) // the take succeeds
	waitcond.For(t, "r_held to finish", time.Minute, func() bool {
		for _, f := range a.Status(t).Finished {
			if f.RunID == "r_held" {
				if !strings.Contains(f.Label, "ended in Port") {
					t.Errorf("r_held finished as %+v, want a label saying it was ended in Port", f)
				}
				return true
			}
		}
		return false
	})
	if exists(filepath.Join(dir, "r_held")) {
		t.Error("r_held's command started though Port had ended the run more than an interval before its take succeeded")
	}
	a.Cancel()
	<-a.Done()
}

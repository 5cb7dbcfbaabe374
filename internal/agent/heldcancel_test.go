//go:build linux

package agent_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/kfaketest"
	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/test/harness"
)

// TestARunEndedInPortWhileHeldAtItsTakeNeverStarts: a run Port ended (a user set it to
// FAILURE) while its take was held for longer than the watch's interval never starts its
// command once the take succeeds: it ends as cancelled in Port, as one whose command ran.
func TestARunEndedInPortWhileHeldAtItsTakeNeverStarts(t *testing.T) {
	h, dir, prefix, kind := refusingEnv(t)
	cfg := h.Config(t, harness.Actions(fmt.Sprintf(`
  act: {command: [%q, %q], sandbox: {write: [%q]}}
`, harness.Script(t, `: > "$1/$PORT_RUN_ID"; while [ ! -e "$1/end" ]; do sleep 0.05; done`), dir, dir)))
	const interval = time.Second // the least runStatusInterval
	cfg.Port.RunStatusInterval = config.Duration(interval)
	var refusing atomic.Bool
	kfaketest.RefuseCommits(h.Broker.Fake, &refusing, nil)
	refusing.Store(true)
	a := h.Start(t, cfg, harness.Shim(prefix, kind))
	t.Cleanup(func() { _ = os.WriteFile(filepath.Join(dir, "end"), nil, 0o644) })

	h.NewRun(t, "r_held", "act")
	waitcond.For(t, "r_held's shim to wait for its go", 30*time.Second, func() bool { return len(gatedShims()) == 1 })
	if err := h.Emu.CancelRun("r_held"); err != nil {
		t.Fatal(err)
	}
	ended := time.Now()
	// The state waited for is the hold's length: longer than the interval after Port ended it.
	waitcond.For(t, "the hold to outlast the interval twice", 30*time.Second, func() bool { return time.Since(ended) > 2*interval })
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

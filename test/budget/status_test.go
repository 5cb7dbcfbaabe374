package budget

import (
	"strings"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/emulator"
)

// TestLongRunsShareOneCheck: a replica asks Port whether its long runs are still open (README
// "Cancelled in Port") with one GET /v1/actions/runs?active=true per runStatusInterval for
// all of them, never one GET per run while they are open; a run shorter than the interval
// costs no check, so a quiet short run is still one request.
func TestLongRunsShareOneCheck(t *testing.T) {
	const interval = time.Second
	o := newOrg(t, 1, emulator.Options{})
	o.statusInterval = interval
	o.start(t, 1, 50, script(t, `case "$PORT_RUN_ID" in *long*) sleep 4.5;; esac`))

	start := time.Now()
	long := o.waitClosed(t, o.produce(t, "long", 4), time.Minute)
	took := time.Since(start)
	short := o.waitClosed(t, o.produce(t, "short", 20), time.Minute)
	lists, perRun := 0, 0
	for _, r := range o.emu.Requests() {
		switch {
		case r.At.Before(start):
		case r.Method == "GET" && r.Path == "/v1/actions/runs":
			lists++
		case r.Method == "GET" && strings.HasPrefix(r.Path, "/v1/actions/runs/"):
			perRun++
		}
	}
	t.Logf("4 runs of 4.5s, interval %s: %d list requests, %d per-run checks in %s: %.2f requests per long run with its closing",
		interval, lists, perRun, took.Round(time.Millisecond), float64(lists+perRun+4)/4)
	if perRun != 0 {
		t.Errorf("%d per-run checks of open runs: one list request per interval covers them", perRun)
	}
	if most := int(took/interval) + 1; lists < 1 || lists > most {
		t.Errorf("%d list requests in %s, want 1 to %d (one per interval)", lists, took, most)
	}
	for _, r := range append(long, short...) {
		if r.Status != "SUCCESS" || r.Terminations != 1 {
			t.Errorf("run %s: %s, %d terminations", r.ID, r.Status, r.Terminations)
		}
	}
	requests := o.emu.Requests()
	for _, r := range short {
		n := 0
		for _, q := range requests {
			if strings.Contains(q.Path, r.ID) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("short run %s cost %d requests, want 1", r.ID, n)
		}
	}
}

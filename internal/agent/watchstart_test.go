//go:build linux

package agent_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/kfaketest"
	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/metrics"
	"github.com/port-runner/port-runner/test/harness"
)

// TestARunHeldAtItsTakeIsWatchedOnlyOnceTaken: the Port watch (README "Cancelled
// in Port") asks about runs watched for the interval. A run whose take is held
// (its start mark refused, as while its partition's commit has no room for it) has no command
// yet: its watch costs Port nothing however long the take lasts, and it does not turn the
// one other run's GET into a list request. Once its take succeeds it is watched as any run.
func TestARunHeldAtItsTakeIsWatchedOnlyOnceTaken(t *testing.T) {
	h, dir, a, refusing := heldWatchEnv(t, "")
	h.NewRun(t, "r_first", "act")
	waitcond.For(t, "r_first's command to start", 30*time.Second, func() bool { return exists(filepath.Join(dir, "r_first")) })
	first := gatedShims() // its shim (which had its go)
	refusing.Store(true)
	h.NewRun(t, "r_held", "act")
	waitcond.For(t, "r_held's shim to wait for its go", 30*time.Second, func() bool {
		return slices.ContainsFunc(gatedShims(), func(pid int) bool { return !slices.Contains(first, pid) })
	})
	held := time.Now()
	requests := func(at time.Time) (firstGets, heldGets, lists int) { return watchRequests(h, at, "r_held") }
	// Two turns of the watch with r_held waiting: the second more than an interval in.
	waitcond.For(t, "two checks of r_first's long command", 30*time.Second, func() bool {
		f, g, l := requests(held)
		return f+g+l >= 2
	})
	if _, g, l := requests(held); g != 0 || l != 0 {
		t.Errorf("while r_held waited for its take: %d GETs of it, %d list requests; want r_first's own GETs only", g, l)
	}
	if exists(filepath.Join(dir, "r_held")) {
		t.Fatal("r_held's command started though its start mark was refused")
	}

	refusing.Store(false) // the take succeeds: r_held's command starts
	waitcond.For(t, "r_held's command to start", 30*time.Second, func() bool { return exists(filepath.Join(dir, "r_held")) })
	started := time.Now()
	waitcond.For(t, "a list request for the two long runs", 30*time.Second, func() bool {
		_, _, l := requests(started)
		return l >= 1
	})
	if err := os.WriteFile(filepath.Join(dir, "end"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"r_first", "r_held"} {
		if r := h.WaitClosed(t, id); r.Status != "SUCCESS" {
			t.Errorf("%s: %s, want SUCCESS", id, r.Status)
		}
	}
	a.Cancel()
	<-a.Done()
}

// watchRequests counts the watch's requests since at: GETs of r_first and of other, lists.
func watchRequests(h *harness.Env, at time.Time, other string) (firstGets, otherGets, lists int) {
	for _, r := range h.Emu.Requests() {
		switch {
		case r.At.Before(at) || r.Method != "GET":
		case r.Path == "/v1/actions/runs/r_first":
			firstGets++
		case r.Path == "/v1/actions/runs/"+other:
			otherGets++
		case r.Path == "/v1/actions/runs":
			lists++
		}
	}
	return firstGets, otherGets, lists
}

// heldWatchEnv is an agent whose runs' start marks the broker refuses while refusing is set
// (refusingEnv), with the least runStatusInterval (watchInterval), and the action act: a
// command that leaves dir/$PORT_RUN_ID as it starts and ends once dir/end is there; more
// adds actions (YAML lines under actions:).
func heldWatchEnv(t *testing.T, more string) (h *harness.Env, dir string, a *harness.Agent, refusing *atomic.Bool) {
	t.Helper()
	h, dir, prefix, kind := refusingEnv(t)
	cfg := h.Config(t, harness.Actions(fmt.Sprintf(`
  act: {command: [%q, %q], sandbox: {write: [%q]}}
`, harness.Script(t, `: > "$1/$PORT_RUN_ID"; while [ ! -e "$1/end" ]; do sleep 0.05; done`), dir, dir)+more))
	cfg.Port.RunStatusInterval = config.Duration(watchInterval)
	refusing = new(atomic.Bool)
	kfaketest.RefuseCommits(h.Broker.Fake, refusing, nil)
	a = h.Start(t, cfg, harness.Shim(prefix, kind))
	t.Cleanup(func() { _ = os.WriteFile(filepath.Join(dir, "end"), nil, 0o644) })
	return h, dir, a, refusing
}

// watchInterval is heldWatchEnv's runStatusInterval: the least there is.
const watchInterval = time.Second

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

// TestAWatchEndsWithARunWhoseCommandCouldNotStart: a run held at its take for longer than the
// interval whose command then cannot start (its executable is gone: the executor ends before
// its gate) is never watched, asked about or said started: once it is closed the watch asks
// Port nothing about it, and the one other open run is asked about with its own GET again,
// not a list.
func TestAWatchEndsWithARunWhoseCommandCouldNotStart(t *testing.T) {
	gone := harness.Script(t, "exit 0")
	h, dir, a, refusing := heldWatchEnv(t, fmt.Sprintf("  gone: {command: [%q]}\n", gone))
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	h.NewRun(t, "r_first", "act")
	waitcond.For(t, "r_first's command to start", 30*time.Second, func() bool { return exists(filepath.Join(dir, "r_first")) })
	refusing.Store(true)
	h.NewRun(t, "r_gone", "gone")
	waitcond.For(t, "r_gone to be received", 30*time.Second, func() bool {
		return slices.ContainsFunc(a.Status(t).Runs, func(r metrics.Run) bool { return r.RunID == "r_gone" })
	})
	received := time.Now()
	// The state waited for is the hold's length: longer than the interval.
	waitcond.For(t, "the hold to outlast the interval twice", 30*time.Second, func() bool { return time.Since(received) > 2*watchInterval })
	refusing.Store(false) // the take succeeds; the command cannot start
	if r := h.WaitClosed(t, "r_gone"); r.Status != "FAILURE" {
		t.Errorf("r_gone: %s, want FAILURE (could not start)", r.Status)
	}
	closed := time.Now()
	// It never started: not said to have, and Port not asked about it (its closing says all).
	if _, gets, _ := watchRequests(h, received, "r_gone"); gets != 0 {
		t.Errorf("%d GETs of r_gone, whose command never started, want none", gets)
	}
	if n := a.Logs.FilterMessage("run started").FilterField(zap.String("run_id", "r_gone")).Len(); n != 0 {
		t.Errorf("%d lines saying r_gone started, whose command never did", n)
	}
	var firstGets, goneGets, lists int
	// Two turns of the watch after r_gone's end: the second more than an interval after its
	// take, when a watch it had left behind would be due.
	waitcond.For(t, "two checks of r_first after r_gone closed", 30*time.Second, func() bool {
		firstGets, goneGets, lists = watchRequests(h, closed, "r_gone")
		return firstGets+lists >= 2
	})
	if goneGets != 0 || lists != 0 {
		t.Errorf("after r_gone was closed: %d GETs of it and %d list requests, want none: its watch outlived it", goneGets, lists)
	}
	if err := os.WriteFile(filepath.Join(dir, "end"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h.WaitClosed(t, "r_first")
	a.Cancel()
	<-a.Done()
}

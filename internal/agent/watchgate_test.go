package agent

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/runmsg"
	"github.com/port-runner/port-runner/reporter"
)

// gated is a run at runCommand's gate (runGate), with only what the gate and the Port
// watch need, asking an emulator over HTTP: its take done, begun held ago.
type gated struct {
	e      *emulator.Emulator
	a      *Agent
	r      *run
	gate   func() error
	ctx    context.Context // the command's
	cancel context.CancelCauseFunc
	heard  chan struct{} // closed once the watch heard a refusal of the run's log
	runLog *reporter.RunLog
}

func newGated(t *testing.T, id string, held time.Duration, rerun bool) *gated {
	t.Helper()
	e, api, w := newTestWatch(t)
	e.RegisterRun(id, "deploy")
	g := &gated{e: e, a: &Agent{log: zap.NewNop(), api: api, watch: w}, heard: make(chan struct{})}
	// A log batch leaves at once: a rerun's note reaches Port as soon as it is written.
	rep := reporter.New(api, reporter.Options{FlushInterval: time.Nanosecond, OnRefused: func(id string, err error) {
		w.refused(id, err)
		close(g.heard)
	}})
	done := make(chan struct{})
	close(done)
	g.r = &run{lease: ownLease{}, msg: runmsg.Run{ID: id, Action: "deploy"}, log: zap.NewNop(), rerun: rerun,
		taking: &pendingTake{done: done, began: time.Now().Add(-held)}}
	g.r.life = newLives(func(int) {}).receive(runAt{offset: -1}, id, "deploy", ownLease{})
	g.ctx, g.cancel = context.WithCancelCause(context.Background())
	t.Cleanup(func() { g.cancel(nil) })
	g.runLog = rep.StartOn(g.ctx, api, id, nil)
	g.gate = (&runGate{a: g.a, ctx: g.ctx, r: g.r, cancel: g.cancel, runLog: g.runLog}).pass
	return g
}

// A refusal of a run's log that comes after its take succeeded but before its command starts
// (a rerun's note, with a short flushInterval) is heard: the watch asks Port about the run
// at once and stops its command (README "Cancelled in Port"), rather than dropping it and
// asking only an interval after the command's start, or never.
func TestARefusalBeforeTheCommandStartsIsHeard(t *testing.T) {
	g := newGated(t, "r_a", 0, true)
	if err := g.e.CancelRun("r_a"); err != nil { // a user set it to FAILURE
		t.Fatal(err)
	}
	if err := g.gate(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-g.heard: // Port refused the rerun's note; the command has not started
	case <-time.After(30 * time.Second):
		t.Fatal("Port's refusal of the run's note never came")
	}
	g.a.watch.turn(context.Background())
	if n := gets(g.e, "/v1/actions/runs/r_a"); n != 1 || !errors.Is(context.Cause(g.ctx), errCancelledInPort) {
		t.Fatalf("after the refusal: %d GETs of the run, its command's context ended by %v; want 1 GET and the run cancelled in Port",
			n, context.Cause(g.ctx))
	}
}

// A run held at its take for just under the interval is asked about an interval after its
// take began, not an interval after its command started: Port may have ended it while it
// was held. A run held for the interval or longer is asked about at its take (askHeld), and
// that GET counts: it is not asked again within the interval.
func TestTheWatchCountsFromTheTake(t *testing.T) {
	due := func(g *gated, at time.Time) bool {
		runs, _, _ := g.a.watch.due(at)
		return len(runs) == 1 && runs[0].id == g.r.msg.ID
	}
	g := newGated(t, "r_a", time.Minute*9/10, false)
	if err := g.gate(); err != nil {
		t.Fatal(err)
	}
	if gets(g.e, "/v1/actions/runs/r_a") != 0 {
		t.Fatal("a run held under the interval was asked about at its take")
	}
	if !due(g, g.r.taking.began.Add(time.Minute)) {
		t.Error("a run held 0.9 of the interval is not due an interval after its take began")
	}

	g = newGated(t, "r_b", time.Minute, false)
	if err := g.gate(); err != nil {
		t.Fatal(err)
	}
	if n := gets(g.e, "/v1/actions/runs/r_b"); n != 1 {
		t.Fatalf("a run held for the interval: %d GETs at its take, want 1", n)
	}
	if due(g, time.Now().Add(time.Minute/2)) {
		t.Error("a run asked about at its take is due again half an interval later")
	}
}

// A run held at its take for the interval or longer is due at once: askHeld asks about it
// as its take succeeds. From its watch on (watchRun) until that ask, a turn of the watch must
// not ask about it too (a second GET for one answer).
func TestAHeldRunIsAskedOnceAtItsTake(t *testing.T) {
	g := newGated(t, "r_a", 2*time.Minute, false)
	now := time.Now() // as the gate does, just before askHeld
	held := g.a.heldLong(g.r, now)
	if !held {
		t.Fatal("a run held for two intervals is not held long")
	}
	g.a.watchRun(g.r, g.cancel, now, held)
	if runs, nodes, _ := g.a.watch.due(time.Now()); len(runs)+len(nodes) != 0 {
		t.Fatalf("a held run is due for a turn of the watch before askHeld asked about it: %d runs", len(runs)+len(nodes))
	}
	g.a.askHeld(g.ctx, g.r)
	if n := gets(g.e, "/v1/actions/runs/r_a"); n != 1 {
		t.Fatalf("%d GETs of the held run at its take, want 1", n)
	}
}

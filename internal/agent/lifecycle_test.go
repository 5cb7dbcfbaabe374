package agent

import (
	"testing"

	"github.com/port-runner/port-runner/metrics"
)

func TestLivesCountPhasesAndRunning(t *testing.T) {
	running := 0
	l := newLives(func(d int) { running += d })
	a, b := l.receive(runAt{}, "r_a", "x", nil), l.receive(runAt{}, "r_b", "x", nil)
	a.to(phaseClaimed)
	a.to(phaseRunning)
	b.to(phaseRunning)
	if running != 2 || l.count(phaseRunning) != 2 {
		t.Fatalf("running %d, counted %d", running, l.count(phaseRunning))
	}
	a.to(phaseClaimed) // a step back is no step
	a.to(phaseCommandEnded)
	if running != 1 || l.count(phaseCommandEnded) != 1 {
		t.Fatalf("after a ended: running %d, command ended %d", running, l.count(phaseCommandEnded))
	}
	b.leave() // e.g. cancelled and left for redelivery
	a.to(phaseCommittable)
	a.leave()
	a.leave()
	if running != 0 {
		t.Fatalf("running %d after every run left", running)
	}
	for p := range numPhases {
		if n := l.count(p); n != 0 {
			t.Fatalf("%s: %d left", p, n)
		}
	}
}

// /status and the slots read the same runs the phases count.
func TestLivesAreWhatStatusReads(t *testing.T) {
	l := newLives(nil)
	waiting := l.receive(runAt{"t", 0, 5}, "r_wait", "x", ownLease{})
	run := l.receive(runAt{"t", 0, 6}, "r_run", "x", ownLease{})
	other := l.receive(runAt{"t", 1, 0}, "r_other", "x", ownLease{})
	awaiting := l.receive(runAt{"t", 1, 1}, "r_held_elsewhere", "x", ownLease{})
	awaiting.to(phaseAwaiting)
	run.to(phaseStartDurable)
	run.holdSlot()
	run.started(42)
	l.line("r_run", "hello")
	l.line("r_wait", "not running: not kept")
	other.to(phaseCommittable)

	states := map[string]metrics.Run{}
	for _, r := range l.list() {
		states[r.RunID] = r
	}
	if r := states["r_wait"]; r.State != metrics.StateWaiting || r.Offset != 5 || len(r.LastLines) != 0 {
		t.Errorf("waiting run: %+v", r)
	}
	if r := states["r_run"]; r.State != metrics.StateRunning || r.PID != 42 || r.Started.IsZero() || len(r.LastLines) != 1 {
		t.Errorf("running run: %+v", r)
	}
	if r := states["r_other"]; r.State != metrics.StateClosing || r.Partition != 1 || r.Step != "committable" {
		t.Errorf("committable run: %+v", r)
	}
	if r := states["r_held_elsewhere"]; r.State != metrics.StateAwaiting || r.Step != "awaiting" {
		t.Errorf("a run another replica holds: %+v", r)
	}
	if n := l.slotsBusy(); n != 1 {
		t.Errorf("slots busy %d, want 1", n)
	}
	run.to(phaseCommandEnded)
	if r := l.list(); len(r) != 4 {
		t.Fatalf("%d runs", len(r))
	}
	run.leave() // leaving drops the slot too
	waiting.leave()
	other.leave()
	awaiting.leave()
	if n, m := l.slotsBusy(), len(l.list()); n != 0 || m != 0 {
		t.Errorf("after every run left: %d slots, %d runs", n, m)
	}
}

package agent

import "testing"

func TestLivesCountPhasesAndRunning(t *testing.T) {
	running := 0
	l := newLives(func(d int) { running += d })
	a, b := l.receive("r_a", "x", nil), l.receive("r_b", "x", nil)
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

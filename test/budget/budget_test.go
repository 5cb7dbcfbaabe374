package budget

import (
	"fmt"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/waitcond"
)

// TestThreeReplicasShareTenPerSecond: Port allows 10 requests/s for the organization, each
// of 3 replicas is configured at requestsPerSecond 50, and 300 runs print 20 lines each.
// Every run closes once with all its lines in order, Port answers 429 fewer than 5 times,
// and the flow takes at most 1.5x the time the budget needs for the requests it took.
func TestThreeReplicasShareTenPerSecond(t *testing.T) {
	const period = 10 * time.Second
	o := newOrg(t, 6, emulator.Options{Budget: 100, BudgetWindow: period}) // 10/s
	o.start(t, 3, 50, script(t, twentyLinesScript))
	before := o.emu.Rejected()

	start := time.Now()
	ids := o.produce(t, "share", 300)
	runs := o.waitClosed(t, ids, 3*time.Minute)
	flow := time.Since(start)
	checkRuns(t, runs, twentyLines)

	tr := trafficSince(o.emu, start)
	rejected := o.emu.Rejected() - before
	need := time.Duration(float64(tr.accepted) / 10 * float64(time.Second))
	t.Logf("300 runs x 20 lines, 3 replicas: %d requests answered (%.2f per run), %d answered 429, flow %v, budget needs %v (%.2fx)",
		tr.accepted, float64(tr.accepted)/300, rejected, flow.Round(time.Millisecond), need, flow.Seconds()/need.Seconds())
	if rejected >= 5 {
		log429s(t, o.emu, period)
		t.Errorf("Port answered 429 %d times, want fewer than 5", rejected)
	}
	if flow > need*3/2 {
		t.Errorf("flow took %v, over 1.5x the %v the budget needs for %d requests", flow, need, tr.accepted)
	}
	got429, waits, remaining := o.agentMetrics(t)
	if int(got429) != o.emu.Rejected() || waits < uint64(tr.accepted) || len(remaining) != 3 {
		t.Errorf("metrics: %v 429s counted (Port answered %d), %d waits observed for %d requests, budget_remaining %v",
			got429, o.emu.Rejected(), waits, tr.accepted, remaining)
	}
	for _, r := range remaining {
		if r < 0 || r > 100 {
			t.Errorf("port_budget_remaining %v, outside the window's 0..100", r)
		}
	}
}

// TestBudgetDropsMidFlow: Port's budget falls from 50/s to 5/s (500, then 50 per 10s window)
// while 250 runs flow through 3 replicas: the same guarantees, and the flow paced by each
// window's budget.
func TestBudgetDropsMidFlow(t *testing.T) {
	const period = 10 * time.Second
	o := newOrg(t, 6, emulator.Options{Budget: 500, BudgetWindow: period}) // 50/s
	o.start(t, 3, 50, script(t, twentyLinesScript))
	before := o.emu.Rejected()

	// At 50/s (and each replica's burst) the runs take about half a second, and a change of
	// budget starts with a window: change it a third of a second before a window ends,
	// then start the flow, so the budget drops mid-flow.
	for {
		left := time.Until(time.Now().Truncate(period).Add(period))
		if left > 200*time.Millisecond && left <= 400*time.Millisecond {
			break
		}
		time.Sleep(10 * time.Millisecond) // waiting for a point on the clock, not for a state
	}
	o.emu.SetBudget(50, period) // 5/s, from the next window on
	boundary := time.Now().Truncate(period).Add(period)
	start := time.Now()
	ids := o.produce(t, "drop", 250)
	runs := o.waitClosed(t, ids, 3*time.Minute)
	flow := time.Since(start)
	checkRuns(t, runs, twentyLines)

	var need time.Duration
	var fast, slow int
	for _, r := range o.emu.Requests() {
		switch {
		case r.At.Before(start) || r.Status == 429:
		case r.At.Before(boundary):
			fast++
			need += time.Second / 50
		default:
			slow++
			need += time.Second / 5
		}
	}
	rejected := o.emu.Rejected() - before
	t.Logf("250 runs, 50/s -> 5/s after %v: %d requests at 50/s, %d at 5/s, %d answered 429, flow %v, budget needs %v (%.2fx)",
		boundary.Sub(start).Round(time.Millisecond), fast, slow, rejected, flow.Round(time.Millisecond), need, flow.Seconds()/need.Seconds())
	if slow < 50 {
		t.Fatalf("only %d requests after the budget dropped, less than one window of it: the test proves little", slow)
	}
	if rejected >= 5 {
		log429s(t, o.emu, period)
		t.Errorf("Port answered 429 %d times, want fewer than 5", rejected)
	}
	if flow > need*3/2 {
		t.Errorf("flow took %v, over 1.5x the %v the budget needs", flow, need)
	}
}

// TestPortUnreachableForThirtySeconds: Port refuses connections for 30s while runs print;
// afterwards every line and every termination arrive, once.
func TestPortUnreachableForThirtySeconds(t *testing.T) {
	o := newOrg(t, 6, emulator.Options{Budget: 100, BudgetWindow: 10 * time.Second})
	// 40 lines over ~8s, so the outage starts while every run is printing.
	o.start(t, 3, 50, script(t, `i=1; while [ $i -le 40 ]; do echo "line $i of $PORT_RUN_ID"; i=$((i+1)); sleep 0.2; done`))
	ids := o.produce(t, "outage", 12)
	waitcond.For(t, "a first batch of every run in Port", time.Minute, func() bool {
		for _, id := range ids {
			if r, _ := o.emu.Run(id); len(r.Logs) == 0 {
				return false
			}
		}
		return true
	})
	o.srv.Refuse()
	down := time.Now()
	for _, id := range ids {
		if r, _ := o.emu.Run(id); r.Status != "IN_PROGRESS" {
			t.Fatalf("run %s ended before the outage: it proves nothing", id)
		}
	}
	time.Sleep(30 * time.Second) // the outage itself: its length is what is under test
	if err := o.srv.Accept(); err != nil {
		t.Fatal(err)
	}
	runs := o.waitClosed(t, ids, 2*time.Minute)
	t.Logf("12 runs through a 30s outage: all closed %v after it ended", time.Since(down.Add(30*time.Second)).Round(time.Millisecond))
	checkRuns(t, runs, func(id string) []string {
		out := make([]string, 40)
		for i := range out {
			out[i] = fmt.Sprintf("line %d of %s", i+1, id)
		}
		return out
	})
}

package e2e_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/test/harness"
)

// The budget tests: how replicas share Port's API budget (README "Port's API budget"),
// several agents in one group against one Port whose budget they share. Each takes tens of
// seconds by design: the budget, not the machine, sets their pace. The broker plays no part
// in what they prove, so they run on the in-process one only.

// budgetWindow is the emulated Port's budget window.
const budgetWindow = 10 * time.Second

// budgetEnv is an org whose Port allows limit requests per budgetWindow.
func budgetEnv(t testing.TB, partitions, limit int) *harness.Env {
	t.Helper()
	b := harness.NewBroker(t)
	if b.Kind != harness.KindKfake {
		t.Skip("paced by Port's budget windows, not by the broker: the in-process broker's pass runs it")
	}
	return harness.New(t, partitions, harness.WithBroker(b), harness.WithPort(func(o *emulator.Options) {
		o.Budget, o.BudgetWindow = limit, budgetWindow
	}))
}

// startReplicas runs n replicas of the agent, each at requestsPerSecond rps, with command as
// action "build", and port's other keys as given ("key: value"); it returns once the group
// has settled with all n owning partitions, so runs produced afterwards are fresh runs to all.
func startReplicas(t testing.TB, h *harness.Env, n int, rps float64, command string, port ...string) []*harness.Agent {
	t.Helper()
	cfg := h.Config(t, fmt.Sprintf(`
port: {requestsPerSecond: %v%s}
executor: {maxConcurrent: 8, shutdownTimeout: 10s}
logs: {flushInterval: 1s}
actions:
  build: {command: [%q]}
`, rps, strings.Join(append([]string{""}, port...), ", "), command))
	var replicas []*harness.Agent
	for i := range n {
		replicas = append(replicas, h.Start(t, cfg, harness.Named(fmt.Sprintf("replica%d", i)),
			harness.OwnMetrics(), harness.TestLogLevel(zap.WarnLevel)))
	}
	h.WaitSettled(t, replicas...)
	return replicas
}

// produceBuilds makes n runs of "build" in Port and on the topic; it returns their ids.
func produceBuilds(t testing.TB, h *harness.Env, prefix string, from, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("r_%s_%03d", prefix, from+i)
		h.NewRun(t, ids[i], "build")
	}
	return ids
}

// TestThreeReplicasShareTenPerSecond: Port allows 10 requests/s for the organization, each
// of 3 replicas is configured at requestsPerSecond 50, and 300 runs print 20 lines each.
// Every run closes once with all its lines in order, Port answers 429 fewer than 5 times,
// and the flow takes at most 1.5x the time the budget needs for the requests it took.
func TestThreeReplicasShareTenPerSecond(t *testing.T) {
	h := budgetEnv(t, 6, 100) // 10/s
	replicas := startReplicas(t, h, 3, 50, harness.Script(t, twentyLinesScript))
	before := h.Emu.Rejected()

	start := time.Now()
	ids := produceBuilds(t, h, "share", 0, 300)
	runs := h.WaitAllClosed(t, ids, 3*time.Minute)
	flow := time.Since(start)
	checkRuns(t, runs, twentyLines)

	tr := trafficSince(h.Emu, start)
	rejected := h.Emu.Rejected() - before
	need := time.Duration(float64(tr.accepted) / 10 * float64(time.Second))
	t.Logf("300 runs x 20 lines, 3 replicas: %d requests answered (%.2f per run), %d answered 429, flow %v, budget needs %v (%.2fx)",
		tr.accepted, float64(tr.accepted)/300, rejected, flow.Round(time.Millisecond), need, flow.Seconds()/need.Seconds())
	if rejected >= 5 {
		log429s(t, h.Emu)
		t.Errorf("Port answered 429 %d times, want fewer than 5", rejected)
	}
	if flow > need*3/2 {
		t.Errorf("flow took %v, over 1.5x the %v the budget needs for %d requests", flow, need, tr.accepted)
	}
	got429, waits, remaining := agentMetrics(t, replicas)
	if int(got429) != h.Emu.Rejected() || waits < uint64(tr.accepted) || len(remaining) != 3 {
		t.Errorf("metrics: %v 429s counted (Port answered %d), %d waits observed for %d requests, budget_remaining %v",
			got429, h.Emu.Rejected(), waits, tr.accepted, remaining)
	}
	for _, r := range remaining {
		if r < 0 || r > 100 {
			t.Errorf("port_budget_remaining %v, outside the window's 0..100", r)
		}
	}
}

// TestBudgetDropsMidFlow: Port's budget falls from 50/s to 5/s (500, then 50 per window)
// while runs flow through 3 replicas: the same guarantees, and the flow paced by each
// window's budget. Runs keep coming; the budget drops once Port has answered a window's
// worth of the new budget at the old one, and the flow ends once it has answered more than
// that under the new one: the flow spans the drop however fast the machine runs it.
func TestBudgetDropsMidFlow(t *testing.T) {
	const newBudget = 50
	h := budgetEnv(t, 6, 500) // 50/s
	startReplicas(t, h, 3, 50, harness.Script(t, twentyLinesScript))
	before := h.Emu.Rejected()

	start := time.Now()
	dropped := false
	ids := keepFlowing(t, h, "drop", 40, func() bool {
		if !dropped {
			if answered(h.Emu, start) < newBudget {
				return false
			}
			h.Emu.SetBudget(newBudget, budgetWindow) // 5/s, from the next window on
			dropped = true
		}
		since := h.Emu.BudgetChanged()
		return !since.IsZero() && answered(h.Emu, since) > newBudget
	})
	runs := h.WaitAllClosed(t, ids, 3*time.Minute)
	flow := time.Since(start)
	checkRuns(t, runs, twentyLines)

	boundary := h.Emu.BudgetChanged()
	var need time.Duration
	var fast, slow int
	for _, r := range h.Emu.Requests() {
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
	rejected := h.Emu.Rejected() - before
	t.Logf("%d runs, 50/s -> 5/s after %v: %d requests at 50/s, %d at 5/s, %d answered 429, flow %v, budget needs %v (%.2fx)",
		len(ids), boundary.Sub(start).Round(time.Millisecond), fast, slow, rejected, flow.Round(time.Millisecond), need, flow.Seconds()/need.Seconds())
	if fast < newBudget || slow <= newBudget {
		t.Fatalf("%d requests before the budget dropped and %d after: want a window of the new budget before, more after", fast, slow)
	}
	if rejected >= 5 {
		log429s(t, h.Emu)
		t.Errorf("Port answered 429 %d times, want fewer than 5", rejected)
	}
	if flow > need*3/2 {
		t.Errorf("flow took %v, over 1.5x the %v the budget needs", flow, need)
	}
}

// keepFlowing produces runs of "build", keeping backlog of them not yet closed, until
// enough holds; it returns their ids in order.
func keepFlowing(t *testing.T, h *harness.Env, prefix string, backlog int, enough func() bool) []string {
	t.Helper()
	var ids []string
	open := map[string]bool{}
	waitcond.For(t, "the flow to have done enough", 3*time.Minute, func() bool {
		for id := range open {
			if r, _ := h.Emu.Run(id); harness.Ended(r) {
				delete(open, id)
			}
		}
		if enough() {
			return true
		}
		for _, id := range produceBuilds(t, h, prefix, len(ids), backlog-len(open)) {
			ids = append(ids, id)
			open[id] = true
		}
		return false
	})
	return ids
}

// answered is how many requests Port answered, but for 429s, from the time from on.
func answered(e *emulator.Emulator, from time.Time) int {
	n := 0
	for _, r := range e.Requests() {
		if !r.At.Before(from) && r.Status != 429 {
			n++
		}
	}
	return n
}

// TestPortUnreachableForThirtySeconds: Port refuses connections for 30s while runs print;
// afterwards every line and every termination arrive, once.
func TestPortUnreachableForThirtySeconds(t *testing.T) {
	h := budgetEnv(t, 6, 100)
	// 40 lines over ~8s, so the outage starts while every run is printing.
	startReplicas(t, h, 3, 50, harness.Script(t, `i=1; while [ $i -le 40 ]; do echo "line $i of $PORT_RUN_ID"; i=$((i+1)); sleep 0.2; done`))
	ids := produceBuilds(t, h, "outage", 0, 12)
	waitcond.For(t, "a first batch of every run in Port", time.Minute, func() bool {
		for _, id := range ids {
			if r, _ := h.Emu.Run(id); len(r.Logs) == 0 {
				return false
			}
		}
		return true
	})
	h.Port.Refuse()
	down := time.Now()
	for _, id := range ids {
		if r, _ := h.Emu.Run(id); harness.Ended(r) {
			t.Fatalf("run %s ended before the outage: it proves nothing", id)
		}
	}
	time.Sleep(30 * time.Second) // the outage itself: its length is what is under test
	if err := h.Port.Accept(); err != nil {
		t.Fatal(err)
	}
	runs := h.WaitAllClosed(t, ids, 2*time.Minute)
	t.Logf("12 runs through a 30s outage: all closed %v after it ended", time.Since(down.Add(30*time.Second)).Round(time.Millisecond))
	checkRuns(t, runs, func(id string) []string {
		out := make([]string, 40)
		for i := range out {
			out[i] = fmt.Sprintf("line %d of %s", i+1, id)
		}
		return out
	})
}

// checkRuns asserts every run closed once as SUCCESS with exactly want(id) as its log
// lines, in order, before the agent's summary line.
func checkRuns(t testing.TB, runs []emulator.RunState, want func(id string) []string) {
	t.Helper()
	bad := 0
	for _, r := range runs {
		var lines []string
		for _, l := range r.Logs {
			lines = append(lines, strings.Split(l.Message, "\n")...)
		}
		exp := want(r.ID)
		ok := r.Status == "SUCCESS" && r.Terminations == 1 && r.RejectedTerminations == 0 &&
			len(lines) == len(exp)+1 && strings.HasPrefix(lines[len(lines)-1], "port-runner: exit code 0") &&
			strings.Join(lines[:len(exp)], "\n") == strings.Join(exp, "\n")
		if !ok {
			if bad++; bad <= 3 {
				t.Errorf("run %s: %s, %d terminations, %d rejected, log:\n%s", r.ID, r.Status, r.Terminations, r.RejectedTerminations, strings.Join(lines, "\n"))
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d runs wrong", bad, len(runs))
	}
}

// twentyLines is what the 20-line command prints.
func twentyLines(id string) []string {
	out := make([]string, 20)
	for i := range out {
		out[i] = fmt.Sprintf("line %d of %s", i+1, id)
	}
	return out
}

const twentyLinesScript = `i=1; while [ $i -le 20 ]; do echo "line $i of $PORT_RUN_ID"; i=$((i+1)); done`

// traffic sums up the emulator's requests since from.
type traffic struct {
	accepted, rejected int // answered, and answered 429
}

func trafficSince(e *emulator.Emulator, from time.Time) traffic {
	var tr traffic
	for _, r := range e.Requests() {
		switch {
		case r.At.Before(from):
		case r.Status == 429:
			tr.rejected++
		default:
			tr.accepted++
		}
	}
	return tr
}

// log429s says when in its window each 429 came, for a failure's diagnosis.
func log429s(t testing.TB, e *emulator.Emulator) {
	t.Helper()
	for _, r := range e.Requests() {
		if r.Status == 429 {
			t.Logf("429 for %s %s, %v into its window", r.Method, r.Path, r.At.Sub(r.At.Truncate(budgetWindow)))
		}
	}
}

// agentMetrics sums over the replicas: 429s counted in port_requests_total, samples of
// port_request_wait_seconds, and each replica's port_budget_remaining.
func agentMetrics(t testing.TB, replicas []*harness.Agent) (got429 float64, waitSamples uint64, remaining []float64) {
	t.Helper()
	for _, a := range replicas {
		fams := harness.Gather(t, a.Metrics)
		n, _ := fams.Sum("port_runner_port_requests_total", harness.Labels("code", "429"))
		got429 += n
		w, _ := fams.Sum("port_runner_port_request_wait_seconds", nil)
		waitSamples += uint64(w)
		for _, m := range fams.Series("port_runner_port_budget_remaining", nil) {
			remaining = append(remaining, harness.Value(m))
		}
	}
	return got429, waitSamples, remaining
}

// TestLongRunsShareOneCheck: a replica asks Port whether its long runs are still open (README
// "Cancelled in Port") with one GET /v1/actions/runs?active=true per runStatusInterval for
// all of them, never one GET per run while they are open; a run shorter than the interval
// costs no check, so a quiet short run is still one request.
func TestLongRunsShareOneCheck(t *testing.T) {
	const interval = time.Second
	h := budgetEnv(t, 1, 0) // no budget: the requests are counted, not paced
	startReplicas(t, h, 1, 50, harness.Script(t, `case "$PORT_RUN_ID" in *long*) sleep 4.5;; esac`),
		fmt.Sprintf("runStatusInterval: %s", interval))

	start := time.Now()
	long := h.WaitAllClosed(t, produceBuilds(t, h, "long", 0, 4), time.Minute)
	took := time.Since(start)
	short := h.WaitAllClosed(t, produceBuilds(t, h, "short", 0, 20), time.Minute)
	lists, perRun := 0, 0
	for _, r := range h.Emu.Requests() {
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
	// The emulator records a request once it has answered it, after the run's state changed:
	// a run seen closed may still miss its closing among the requests for a moment.
	costs := func() map[string]int {
		n := map[string]int{}
		for _, q := range h.Emu.Requests() {
			for _, r := range short {
				if strings.Contains(q.Path, r.ID) {
					n[r.ID]++
				}
			}
		}
		return n
	}
	waitcond.For(t, "every short run's closing among the requests", 30*time.Second, func() bool { return len(costs()) == len(short) })
	for id, n := range costs() {
		if n != 1 {
			t.Errorf("short run %s cost %d requests, want 1", id, n)
		}
	}
}

package e2e_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/agent"
	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/metrics"
	"github.com/port-runner/port-runner/test/harness"
)

// With 2 slots busy and 38 runs waiting, the broker-side consumer_lag says so (the
// consumer's own view showed 2: it stops polling when the pool is full), the age of the
// oldest unstarted message grows, and /status shows the two running runs.
func TestLagWhilePoolIsFull(t *testing.T) {
	h := harness.New(t, 2)
	g := newGate(t)
	// The production lag interval (5s): the 15s of the acceptance point include it.
	r := replica(t, h, opsConfig(t, h, 2, g), agent.WithLagInterval(0))
	var ids []string
	for i := range 40 {
		id := fmt.Sprintf("r_full_%02d", i)
		ids = append(ids, id)
		h.NewRun(t, id, "gated")
	}
	waitcond.For(t, "2 runs running", 30*time.Second, func() bool {
		v, _ := r.Scrape(t).Sum("port_runner_runs_in_flight", nil)
		return v == 2
	})
	var lag float64
	took := waitcond.For(t, "consumer_lag to sum to at least 36", 15*time.Second, func() bool {
		lag, _ = r.Scrape(t).Sum("port_runner_consumer_lag", map[string]string{"topic": h.Topic})
		return lag >= 36
	})
	t.Logf("consumer_lag sums to %.0f, %s after the pool filled", lag, took.Round(time.Millisecond))
	fams := r.Scrape(t)
	if n := len(fams.Series("port_runner_consumer_lag", map[string]string{"topic": h.Topic})); n != 2 {
		t.Errorf("consumer_lag has %d series, want one per partition (2)", n)
	}
	if v, _ := fams.Sum("port_runner_executor_slots", map[string]string{"state": "busy"}); v != 2 {
		t.Errorf("executor_slots{state=busy} = %v, want 2", v)
	}
	if v, _ := fams.Sum("port_runner_executor_slots", map[string]string{"state": "free"}); v != 0 {
		t.Errorf("executor_slots{state=free} = %v, want 0", v)
	}

	// The oldest unstarted message gets older while the runs wait.
	age := func() float64 {
		ages := r.Scrape(t).Series("port_runner_consumer_lag_seconds", map[string]string{"topic": h.Topic})
		oldest := 0.0
		for _, m := range ages {
			oldest = max(oldest, harness.Value(m))
		}
		return oldest
	}
	first := 0.0
	waitcond.For(t, "consumer_lag_seconds above 0", 15*time.Second, func() bool { first = age(); return first > 0 })
	var later float64
	waitcond.For(t, "consumer_lag_seconds to grow", 15*time.Second, func() bool { later = age(); return later >= first+1 })
	t.Logf("consumer_lag_seconds grew from %.2fs to %.2fs", first, later)

	// /status: the two running runs with their pid and their last lines, masked.
	var st metrics.Status
	waitcond.For(t, "/status to show the 2 runs running", 15*time.Second, func() bool {
		st = r.Status(t)
		n := 0
		for _, run := range st.Runs {
			if run.State == metrics.StateRunning && len(run.LastLines) > 0 {
				n++
			}
		}
		return n == 2
	})
	running := 0
	for _, run := range st.Runs {
		if run.State != metrics.StateRunning {
			continue
		}
		running++
		if run.PID <= 0 || run.Started.IsZero() || !strings.HasPrefix(run.RunID, "r_full_") || run.Action != "gated" {
			t.Errorf("/status run %+v", run)
		}
		if !strings.Contains(strings.Join(run.LastLines, " | "), "started with ***") {
			t.Errorf("/status last lines %q, want the masked first line", run.LastLines)
		}
		if strings.Contains(strings.Join(run.LastLines, " | "), "s3cret-value") {
			t.Errorf("/status shows a masked value: %q", run.LastLines)
		}
	}
	if running != 2 || st.SlotsBusy != 2 || st.SlotsCapacity != 2 || !st.Ready {
		t.Errorf("/status = %+v, want 2 running of 2 slots, ready", st)
	}

	g.open(t)
	for _, id := range ids {
		if s := h.WaitClosed(t, id); s.Status != "SUCCESS" {
			t.Fatalf("run %s: %s %q", id, s.Status, s.StatusLabel)
		}
	}
	waitcond.For(t, "consumer_lag and consumer_lag_seconds back to 0", 15*time.Second, func() bool {
		fams := r.Scrape(t)
		l, _ := fams.Sum("port_runner_consumer_lag", map[string]string{"topic": h.Topic})
		a, _ := fams.Sum("port_runner_consumer_lag_seconds", map[string]string{"topic": h.Topic})
		return l == 0 && a == 0
	})
}

// A replica that owns no partition (one partition, two replicas) still exports the
// topic's lag, read from the broker; only the owner exports consumer_lag_seconds.
func TestLagFromReplicaWithoutPartitions(t *testing.T) {
	h := harness.New(t, 1)
	g := newGate(t)
	cfg := opsConfig(t, h, 1, g)
	a := replica(t, h, cfg)
	b := replica(t, h, cfg)
	for i := range 5 {
		h.NewRun(t, fmt.Sprintf("r_standby_%d", i), "gated")
	}
	owned := func(r *harness.Agent) bool {
		return len(r.Scrape(t).Series("port_runner_consumer_lag_seconds", map[string]string{"topic": h.Topic})) > 0
	}
	var owner, standby *harness.Agent
	waitcond.For(t, "one replica owning the partition and one standing by, both ready", 30*time.Second, func() bool {
		ao, bo := owned(a), owned(b)
		ar, _ := a.Scrape(t).Sum("port_runner_ready", nil)
		br, _ := b.Scrape(t).Sum("port_runner_ready", nil)
		if ao == bo || ar != 1 || br != 1 {
			return false
		}
		owner, standby = a, b
		if bo {
			owner, standby = b, a
		}
		return true
	})
	var lag float64
	waitcond.For(t, "the standby to export the backlog (4 waiting + 1 running)", 15*time.Second, func() bool {
		lag, _ = standby.Scrape(t).Sum("port_runner_consumer_lag", map[string]string{"topic": h.Topic, "partition": "0"})
		return lag >= 4
	})
	if st := standby.Status(t); len(st.Runs) != 0 || !st.Ready {
		t.Errorf("standby /status = %+v, want ready with no runs", st)
	}
	ownerLag, _ := owner.Scrape(t).Sum("port_runner_consumer_lag", map[string]string{"topic": h.Topic, "partition": "0"})
	t.Logf("standby exports consumer_lag %.0f, the owner %.0f", lag, ownerLag)
	g.open(t)
}

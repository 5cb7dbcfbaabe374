//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/port-runner/port-runner/test/bench/internal/benchkit"
)

// caseThousand: figure 7, -thousand-runs concurrent `sleep` runs in one replica
// (executor.maxConcurrent at the same number, spread over -thousand-partitions partitions:
// one partition holds at most 100 unfinished runs, what its commit can carry). It measures,
// once every run is in flight, the agent's goroutines and /status, then its CPU over the rest
// of the sleep with nobody scraping it, and its RSS throughout; every run must close.
func (b *bench) caseThousand(ctx context.Context) error {
	o := b.o
	ctx, cancel := b.caseCtx(ctx)
	defer cancel()
	secs := strconv.FormatFloat(o.thousandSleep.Seconds(), 'f', -1, 64)
	ag, topic, err := b.startAgent(ctx, "thousand", o.thousandPartitions, benchkit.Config{
		MaxConcurrent: o.thousandRuns, Pprof: true,
		Actions: map[string]benchkit.Action{"sleep": {Command: []string{"/bin/sleep", secs}}},
	})
	if err != nil {
		return err
	}
	ids := benchkit.IDs("sleeper", o.thousandRuns)
	defer b.stopAgent("thousand agent", ag, ids)
	idle, err := goroutines(ctx, ag)
	if err != nil {
		return err
	}
	idleFDs, err := openFiles(ag.Pid)
	if err != nil {
		return err
	}
	s := benchkit.SampleRSS(ag.Pid, 100*time.Millisecond)
	produced := time.Now()
	if _, err := b.prod.Many(ctx, topic, "sleep", ids); err != nil {
		s.Stop()
		return err
	}
	if err := waitInFlight(ctx, ag, float64(o.thousandRuns)); err != nil {
		s.Stop()
		return fmt.Errorf("thousand: waiting for %d runs in flight: %w", o.thousandRuns, err)
	}
	ramp := time.Since(produced)
	busy, err := goroutines(ctx, ag)
	if err != nil {
		s.Stop()
		return err
	}
	busyFDs, err := openFiles(ag.Pid)
	if err != nil {
		s.Stop()
		return err
	}
	threads := osThreads(ag.Pid)
	statusStart := time.Now()
	status, err := ag.Get(ctx, "/status")
	statusTook := time.Since(statusStart)
	if err != nil {
		s.Stop()
		return err
	}
	// The CPU window ends well before the first run's sleep does (the runs started within
	// ramp of produced).
	window := time.Until(produced.Add(o.thousandSleep * 9 / 10))
	var cpuShare float64
	cpuDesc := "n/a: the runs took too long to start to leave a window"
	if window >= time.Second {
		own0, _, err0 := benchkit.ReadCPU(ag.Pid)
		t0 := time.Now()
		select {
		case <-time.After(window):
		case <-ctx.Done():
		}
		own1, _, err1 := benchkit.ReadCPU(ag.Pid)
		if err0 != nil || err1 != nil {
			s.Stop()
			return fmt.Errorf("thousand: reading the agent's CPU: %v %v", err0, err1)
		}
		cpuShare = float64(own1-own0) / float64(time.Since(t0))
		cpuDesc = fmt.Sprintf("%.2f%% of a core", 100*cpuShare)
	}
	err = b.port.WaitEnded(ctx, ids)
	maxKiB, n := s.Stop()
	if err != nil {
		return fmt.Errorf("thousand: %w", err)
	}
	closed := b.port.Ended(ids)
	name := fmt.Sprintf("%d concurrent `sleep %s` runs, maxConcurrent %d, %d partitions", o.thousandRuns, secs, o.thousandRuns, o.thousandPartitions)
	b.t.check("7a", name+": closed", fmt.Sprintf("%d of %d", closed, len(ids)), "all",
		fmt.Sprintf("all %d in flight %s after the first was produced", o.thousandRuns, ramp.Round(time.Millisecond)), closed == len(ids))
	b.t.check("7b", name+": agent RSS", benchkit.MiB(maxKiB), "<= 150 MiB", fmt.Sprintf("max of %d samples", n), maxKiB <= 150*1024)
	b.t.check("7c", name+": agent CPU while they sleep", cpuDesc, "< 2% of a core",
		fmt.Sprintf("over %s with nobody scraping the agent", window.Round(time.Millisecond)), window >= time.Second && cpuShare < 0.02)
	perRun := float64(busy-idle) / float64(o.thousandRuns)
	b.t.check("7d", name+": goroutines per run in flight", fmt.Sprintf("%.1f", perRun), "<= 12",
		fmt.Sprintf("%d idle, %d with every run sleeping (%s OS threads)", idle, busy, threads), perRun <= 12)
	fdsPerRun := float64(busyFDs-idleFDs) / float64(o.thousandRuns)
	b.t.check("7f", name+": open files per run in flight", fmt.Sprintf("%.1f", fdsPerRun), "<= 8",
		fmt.Sprintf("%d idle, %d with every run sleeping", idleFDs, busyFDs), fdsPerRun <= 8)
	b.t.check("7e", name+": /status", fmt.Sprintf("%d KiB in %s", len(status)>>10, ms(statusTook)), "<= 1 MiB",
		fmt.Sprintf("%d runs listed", bytes.Count(status, []byte(`"runId"`))), len(status) <= 1<<20)
	return nil
}

// openFiles is how many file descriptors pid has open: a run holds a few (its output pipe,
// the shim's control socket, a pidfd), so a thousand need a RLIMIT_NOFILE above the usual 1024.
func openFiles(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, fmt.Errorf("open files: %w", err)
	}
	return len(ents), nil
}

// osThreads is how many OS threads pid has ("?" when /proc does not say): a run waiting for
// its command holds none.
func osThreads(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// goroutines is the agent's goroutine count, from its pprof endpoint.
func goroutines(ctx context.Context, ag *benchkit.Agent) (int, error) {
	b, err := ag.Get(ctx, "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return 0, fmt.Errorf("goroutines: %w", err)
	}
	var n int
	if _, err := fmt.Sscanf(string(b), "goroutine profile: total %d", &n); err != nil {
		return 0, fmt.Errorf("goroutines: %q: %w", b[:min(len(b), 60)], err)
	}
	return n, nil
}

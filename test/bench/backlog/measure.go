//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/port-runner/port-runner/test/bench/internal/benchkit"
)

type milestone struct {
	pct        int
	at         time.Duration
	terminated int64
	rssKiB     int64
	heapInuse  float64 // go_memstats_heap_inuse_bytes, -1 if unknown
	goroutines float64
}

// measured is what the bench saw of the agent: while it worked (sampleAgent) and as it
// stopped (stop).
type measured struct {
	outcome    string // done, timeout, interrupted, agent exited early
	samples    int
	firstRSS   int64 // KiB
	maxSampled int64
	marks      []milestone // at 10, 50 and 90 % of the target
	elapsed    time.Duration
	terminated int64

	hwm, finalRSS   int64
	heapEnd, gorEnd float64
	cpu, childCPU   time.Duration
	stopped         time.Duration // from the agent's start until it exited
	stopErr         error
	killed          bool
}

// sampleAgent samples the agent's RSS every o.sample until the target is reached, the agent
// exits, or time runs out.
func sampleAgent(ctx context.Context, o options, ag *benchkit.Agent, port *benchkit.Port, target int64, start time.Time) (*measured, error) {
	var csvW *bufio.Writer
	if o.csv != "" {
		f, err := os.Create(o.csv)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		csvW = bufio.NewWriter(f)
		defer csvW.Flush()
		fmt.Fprintln(csvW, "seconds,terminated,rss_kib")
	}

	m := &measured{}
	var (
		addr      = ag.MetricsAddr
		nextMark  = 0
		pcts      = []int{10, 50, 90}
		lastPrint = time.Now()
	)
	deadline := time.NewTimer(o.timeout)
	defer deadline.Stop()
	tick := time.NewTicker(o.sample)
	defer tick.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			m.outcome = "interrupted"
			break loop
		case <-deadline.C:
			m.outcome = "timeout"
			break loop
		case <-ag.Exited():
			m.outcome = "agent exited early"
			break loop
		case <-tick.C:
		}
		rss, _, err := benchkit.ReadMem(ag.Pid)
		if err != nil {
			continue // exiting; the exited case reports it
		}
		n := int64(port.EndedTotal())
		el := time.Since(start)
		m.samples++
		if m.firstRSS == 0 {
			m.firstRSS = rss
		}
		m.maxSampled = max(m.maxSampled, rss)
		if csvW != nil {
			fmt.Fprintf(csvW, "%.1f,%d,%d\n", el.Seconds(), n, rss)
		}
		for nextMark < len(pcts) && n*100 >= target*int64(pcts[nextMark]) {
			mark := milestone{pct: pcts[nextMark], at: el, terminated: n, rssKiB: rss, heapInuse: -1, goroutines: -1}
			if addr != "" {
				mark.heapInuse, mark.goroutines = scrape(ctx, ag)
			}
			m.marks = append(m.marks, mark)
			nextMark++
		}
		if time.Since(lastPrint) >= 10*time.Second {
			lastPrint = time.Now()
			fmt.Printf("  %6.1fs  terminated %7d / %d  RSS %s\n", el.Seconds(), n, target, mib(rss))
		}
		if n >= target {
			m.outcome = "done"
			break loop
		}
	}
	m.elapsed = time.Since(start)
	m.terminated = int64(port.EndedTotal())
	return m, nil
}

// stop reads the peak and CPU before the agent goes away, then stops it: SIGTERM when it
// reached the target, a kill when it did not.
func (m *measured) stop(ctx context.Context, ag *benchkit.Agent, start time.Time) {
	m.finalRSS, m.hwm, _ = benchkit.ReadMem(ag.Pid) // both 0 when the agent is gone already
	m.heapEnd, m.gorEnd = -1.0, -1.0
	if ag.MetricsAddr != "" {
		m.heapEnd, m.gorEnd = scrape(ctx, ag)
	}
	m.cpu, m.childCPU, _ = benchkit.ReadCPU(ag.Pid)

	switch m.outcome {
	case "done":
		m.stopErr = ag.Stop(90 * time.Second)
		m.killed = m.stopErr != nil && strings.Contains(m.stopErr.Error(), "did not exit")
	case "agent exited early":
		m.stopErr = ag.Stop(0)
	default:
		m.killed = true
		ag.Kill()
	}
	m.stopped = time.Since(start)
}

// scrape reads the agent's heap in use and goroutines from its /metrics.
func scrape(ctx context.Context, ag *benchkit.Agent) (heapInuse, goroutines float64) {
	return ag.Metric(ctx, "go_memstats_heap_inuse_bytes"), ag.Metric(ctx, "go_goroutines")
}

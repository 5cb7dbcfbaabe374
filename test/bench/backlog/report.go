//go:build linux

package main

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/port-runner/port-runner/test/bench/internal/benchkit"
)

// seen is what Port saw of the runs.
type seen struct{ ended, doubled, rejected, notEnded int }

func portSaw(port *benchkit.Port) seen {
	var s seen
	for _, r := range port.Emu.Runs() {
		if r.Status == "IN_PROGRESS" {
			s.notEnded++
			continue
		}
		s.ended++
		if r.Terminations > 1 {
			s.doubled++
		}
		s.rejected += r.RejectedTerminations
	}
	return s
}

// report prints what the bench measured, with its BENCHMARKS.md row, and fails unless every
// run of the target ended once and the agent stopped on its own.
func report(o options, kafkaDesc string, port *benchkit.Port, m *measured, target int64, warnLines, errorLines int64) error {
	ps := portSaw(port)
	fmt.Println()
	fmt.Printf("backlog: %s: %d messages in the topic (%s), maxConcurrent %d, %d partitions, %s, %d CPUs\n",
		m.outcome, o.messages, o.compression, o.maxConcurrent, o.partitions, kafkaDesc, runtime.NumCPU())
	rate := float64(m.terminated) / m.elapsed.Seconds()
	steady := ""
	if len(m.marks) >= 3 {
		d := m.marks[2].at - m.marks[0].at
		if d > 0 {
			steady = fmt.Sprintf(", %.0f runs/s between 10%% and 90%%", float64(m.marks[2].terminated-m.marks[0].terminated)/d.Seconds())
		}
	}
	fmt.Printf("  runs terminated:  %d of target %d in %s (%.0f runs/s from agent start%s)\n",
		m.terminated, target, m.elapsed.Round(time.Millisecond), rate, steady)
	fmt.Printf("  agent CPU:        %.1fs own + %.1fs children (commands)\n", m.cpu.Seconds(), m.childCPU.Seconds())
	fmt.Printf("  peak RSS (VmHWM): %s   max sampled VmRSS %s over %d samples every %s; first sample %s\n",
		mib(m.hwm), mib(m.maxSampled), m.samples, o.sample, mib(m.firstRSS))
	fmt.Printf("  %-5s %9s %10s %10s %12s %11s\n", "prog", "at", "terminated", "VmRSS", "heap_inuse", "goroutines")
	for _, mk := range m.marks {
		fmt.Printf("  %3d%%  %9s %10d %10s %12s %11s\n", mk.pct, mk.at.Round(100*time.Millisecond), mk.terminated, mib(mk.rssKiB), bytesMiB(mk.heapInuse), num(mk.goroutines))
	}
	fmt.Printf("  end   %9s %10d %10s %12s %11s\n", m.elapsed.Round(100*time.Millisecond), m.terminated, mib(m.finalRSS), bytesMiB(m.heapEnd), num(m.gorEnd))
	fmt.Printf("  emulator:         %d runs ended, %d still IN_PROGRESS, %d terminated twice, %d rejected terminations\n", ps.ended, ps.notEnded, ps.doubled, ps.rejected)
	fmt.Printf("  agent:            exit %s after %s (SIGTERM drain %s), %d warn / %d error log lines\n",
		exitText(m.stopErr, m.killed), m.stopped.Round(time.Millisecond), (m.stopped - m.elapsed).Round(time.Millisecond), warnLines, errorLines)
	fmt.Printf("\n| messages in topic | compression | runs processed | maxConcurrent | runs/s | RSS @10%% | RSS @50%% | RSS @90%% | peak RSS (VmHWM) |\n|---|---|---|---|---|---|---|---|---|\n")
	fmt.Printf("| %d | %s | %d | %d | %.0f | %s | %s | %s | %s |\n", o.messages, o.compression, m.terminated, o.maxConcurrent, rate,
		markRSS(m.marks, 0), markRSS(m.marks, 1), markRSS(m.marks, 2), mib(m.hwm))
	return m.problems(ps, target)
}

// problems is why the bench fails, if it does.
func (m *measured) problems(ps seen, target int64) error {
	var problems []string
	if m.outcome != "done" {
		problems = append(problems, m.outcome)
	}
	if int64(ps.ended) < target {
		problems = append(problems, fmt.Sprintf("runs lost: %d of %d terminated", ps.ended, target))
	}
	if ps.doubled > 0 || ps.rejected > 0 {
		problems = append(problems, fmt.Sprintf("%d runs terminated twice, %d rejected terminations", ps.doubled, ps.rejected))
	}
	if m.killed {
		problems = append(problems, "agent had to be killed")
	} else if m.stopErr != nil {
		problems = append(problems, m.stopErr.Error())
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func mib(kib int64) string { return benchkit.MiB(kib) }

func bytesMiB(b float64) string {
	if b < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MiB", b/(1<<20))
}

func num(x float64) string {
	if x < 0 {
		return "-"
	}
	return strconv.FormatFloat(x, 'f', 0, 64)
}

func markRSS(marks []milestone, i int) string {
	if i >= len(marks) {
		return "-"
	}
	return mib(marks[i].rssKiB)
}

func exitText(err error, killed bool) string {
	switch {
	case killed:
		return "SIGKILL (by the bench)"
	case err == nil:
		return "0"
	default:
		return err.Error()
	}
}

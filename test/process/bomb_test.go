//go:build linux

package process_test

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/test/harness"
	"github.com/port-runner/port-runner/test/harness/bomb"
)

// chartMemoryLimit is the chart's resources.limits.memory.
const chartMemoryLimit = 512 << 20

// TestBombUnderTheChartsMemoryLimit: one zstd record a few KiB on the wire that decompresses
// to 900 MiB, under the chart's 512 MiB memory limit (a memory cgroup the test makes when it
// runs as root). It OOM-killed the agent (franz-go's default bound is 1 GiB) on every
// restart while the run behind it waited. The agent must stay up, skip the batch (logged
// with its offsets, counted) and run the message after it; a restarted agent does not meet
// the batch again.
func TestBombUnderTheChartsMemoryLimit(t *testing.T) {
	broker, h, ps, group, start := inChartsLimit(t)
	a := start("agent")
	h.NewRun(t, "r_before_bomb", "ok")
	if run := waitClosed(t, ps, h, "r_before_bomb"); run.Status != "SUCCESS" {
		t.Fatalf("the run before the bomb: %+v", run)
	}

	before := a.PeakRSS(t)
	var groupBefore int64
	if group != nil {
		groupBefore = group.Read(t, "memory.max_usage_in_bytes")
	}
	batch, err := bomb.Batch([]byte("r_bomb"), 900<<20)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	at, err := bomb.Produce(ctx, broker.Client(t), h.Topic, 0, batch)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("bomb: %d bytes on the wire, 900 MiB decompressed, at offset %d", len(batch), at)
	h.NewRun(t, "r_after_bomb", "ok")
	if run := waitClosed(t, ps, h, "r_after_bomb"); run.Status != "SUCCESS" {
		t.Fatalf("the run after the bomb: %+v", run)
	}

	peak := a.PeakRSS(t)
	t.Logf("agent peak RSS (VmHWM): %.1f MiB before the bomb, %.1f MiB after", mib(before), mib(peak))
	if group != nil {
		maxUsage, failcnt := group.Read(t, "memory.max_usage_in_bytes"), group.Read(t, "memory.failcnt")
		t.Logf("memory group: peak usage %.1f MiB before the bomb, %.1f MiB after, of %d MiB; limit hit %d times",
			mib(groupBefore), mib(maxUsage), chartMemoryLimit>>20, failcnt)
	}
	if peak >= chartMemoryLimit {
		t.Errorf("the agent's peak RSS %d MiB reached the chart's limit", peak>>20)
	}
	if log := a.Log(); !strings.Contains(log, "skipped a batch that does not decompress within kafka.maxDecompressBatchBytes") ||
		!strings.Contains(log, fmt.Sprintf(`"firstOffset":%d`, at)) {
		t.Errorf("no error line for the skipped batch at offset %d", at)
	}
	fams := harness.Scrape(t, a.MetricsURL(t))
	if n, _ := fams.Sum("port_runner_messages_total", harness.Labels("outcome", "skipped_batch")); n != 1 {
		t.Errorf(`messages_total{outcome="skipped_batch"} = %v, want 1`, n)
	}

	// The batch is committed past: a restarted agent neither fetches it again nor skips it.
	a.Signal(t, syscall.SIGTERM)
	if !a.Wait(30 * time.Second) {
		t.Fatal("the agent did not exit within 30s of SIGTERM")
	}
	a.WantExit0(t)
	b := start("restarted")
	h.NewRun(t, "r_after_restart", "ok")
	if run := waitClosed(t, ps, h, "r_after_restart"); run.Status != "SUCCESS" {
		t.Fatalf("the run after the restart: %+v", run)
	}
	if strings.Contains(b.Log(), "skipped a batch") {
		t.Errorf("the restarted agent met the skipped batch again")
	}
}

// waitClosed waits for Port to have the run's termination, within the closing budget (a run
// of these tests closes in seconds), failing at once if an agent the test did not stop exits.
func waitClosed(t *testing.T, ps *harness.Processes, h *harness.Env, id string) emulator.RunState {
	t.Helper()
	var run emulator.RunState
	ps.WaitFor("run "+id+" closed in Port", config.ClosingBudget, func() bool {
		r, ok := h.Emu.Run(id)
		run = r
		return ok && harness.Ended(r)
	})
	return run
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// TestManyBombsInOneFetch: 60 zstd batches of 15 MiB each, each within
// kafka.maxDecompressBatchBytes, 107 KB on the wire together, so that one fetch holds them
// all. Held decompressed whole (900 MiB) they took the agent past the chart's memory
// limit. One fetch now decompresses within the bound and a run holds its record's own
// bytes only: the agent stays up, reads every message (none skipped) and runs the one
// after them.
func TestManyBombsInOneFetch(t *testing.T) {
	const batches, each = 60, 15 << 20
	broker, h, ps, group, start := inChartsLimit(t)
	// The group's offset first, then the batches while no agent fetches: the next one's
	// first fetch meets them all at once.
	a := start("agent")
	h.NewRun(t, "r_before", "ok")
	if run := waitClosed(t, ps, h, "r_before"); run.Status != "SUCCESS" {
		t.Fatalf("the run before the batches: %+v", run)
	}
	a.Signal(t, syscall.SIGTERM)
	if !a.Wait(30 * time.Second) {
		t.Fatal("the agent did not exit within 30s of SIGTERM")
	}
	batch, err := bomb.Batch([]byte("r_bomb"), each)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for range batches {
		if _, err := bomb.Produce(ctx, broker.Client(t), h.Topic, 0, batch); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d batches of %d bytes on the wire, %d MiB decompressed each", batches, len(batch), each>>20)
	h.NewRun(t, "r_after", "ok")

	b := start("restarted")
	if run := waitClosed(t, ps, h, "r_after"); run.Status != "SUCCESS" {
		t.Fatalf("the run after the batches: %+v", run)
	}
	peak := b.PeakRSS(t)
	t.Logf("agent peak RSS (VmHWM): %.1f MiB", mib(peak))
	if group != nil {
		t.Logf("memory group: peak usage %.1f MiB of %d MiB; limit hit %d times",
			mib(group.Read(t, "memory.max_usage_in_bytes")), chartMemoryLimit>>20, group.Read(t, "memory.failcnt"))
	}
	// 110-160 MiB here (BENCHMARKS.md "Decompression bombs"), the most of it zstd's
	// garbage while it grows an output whose size the frame does not say; the GC's timing
	// moves it, so the bound is the limit's, as for the one bomb above.
	if peak >= chartMemoryLimit {
		t.Errorf("the agent's peak RSS %d MiB reached the chart's limit", peak>>20)
	}
	fams := harness.Scrape(t, b.MetricsURL(t))
	if n, _ := fams.Sum("port_runner_messages_total", harness.Labels("outcome", "invalid")); n != batches {
		t.Errorf(`messages_total{outcome="invalid"} = %v, want %d (each batch's record read, and not a run)`, n, batches)
	}
	if strings.Contains(b.Log(), "skipped a batch") {
		t.Errorf("a batch within the bound was skipped")
	}
}

// inChartsLimit makes a broker, the emulator, and a memory group of the chart's limit
// (when the test may) that the agents start puts them in (uid 65534, action ok: true).
func inChartsLimit(t *testing.T) (*harness.Broker, *harness.Env, *harness.Processes, *harness.MemoryGroup, func(name string) *harness.Process) {
	broker := plaintextBroker(t)
	h := harness.New(t, 1, harness.WithBroker(broker))
	dir := sharedDir(t)
	group, err := harness.NewMemoryGroup(t, chartMemoryLimit) // before the agents: removed after they exit
	if err != nil {
		t.Logf("no memory group (%v): the agent's peak RSS is checked instead", err)
	}
	ps := harness.NewProcesses(t)
	cfg := h.ConfigFile(t, dir, "logs: {flushInterval: 100ms}\n"+harness.Actions(`  ok: {command: ["true"]}`))
	return broker, h, ps, group, func(name string) *harness.Process {
		p := ps.Agent(name, harness.Binary(t), cfg, harness.ProcessOptions{Home: dir, AsNobody: true})
		if group != nil {
			if err := group.Add(p.Pid()); err != nil {
				t.Fatalf("moving agent %s into its memory group: %v", name, err)
			}
		}
		return p
	}
}

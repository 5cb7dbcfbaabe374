//go:build linux

package hostile

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/port-runner/port-runner/test/bomb"
)

// chartMemoryLimit is the chart's resources.limits.memory.
const chartMemoryLimit = 512 << 20

// TestBombUnderTheChartsMemoryLimit: one zstd record a few KiB on the wire that decompresses
// to 900 MiB, under the chart's 512 MiB memory limit. It OOM-killed the agent (franz-go's
// default bound is 1 GiB) on every restart while the run behind it waited. The agent must
// stay up, skip the batch (logged with its offsets, counted) and run the message after it.
func TestBombUnderTheChartsMemoryLimit(t *testing.T) {
	e := newEnv(t)
	group, err := newMemoryGroup(t, chartMemoryLimit) // before the agent: removed after it exits
	if err != nil {
		t.Logf("no memory group (%v): the agent's peak RSS is checked instead", err)
	}
	a := startIn(t, e, group)
	e.produceRun(t, "r_before_bomb", "ok")
	if run := e.waitClosed(t, a, "r_before_bomb", 60*time.Second); run.Status != "SUCCESS" {
		t.Fatalf("the run before the bomb: %+v", run)
	}

	before := peakRSS(t, a.pid())
	var groupBefore int64
	if group != nil {
		groupBefore = group.read(t, "memory.max_usage_in_bytes")
	}
	batch, err := bomb.Batch([]byte("r_bomb"), 900<<20)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	at, err := bomb.Produce(ctx, e.cluster.Client(t), e.topic, 0, batch)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("bomb: %d bytes on the wire, 900 MiB decompressed, at offset %d", len(batch), at)
	e.produceRun(t, "r_after_bomb", "ok")
	if run := e.waitClosed(t, a, "r_after_bomb", 60*time.Second); run.Status != "SUCCESS" {
		t.Fatalf("the run after the bomb: %+v", run)
	}
	if a.exited() {
		t.Fatalf("the agent exited: %v", a.state())
	}

	peak := peakRSS(t, a.pid())
	t.Logf("agent peak RSS (VmHWM): %.1f MiB before the bomb, %.1f MiB after", mib(before), mib(peak))
	if group != nil {
		maxUsage, failcnt := group.read(t, "memory.max_usage_in_bytes"), group.read(t, "memory.failcnt")
		t.Logf("memory group: peak usage %.1f MiB before the bomb, %.1f MiB after, of %d MiB; limit hit %d times",
			mib(groupBefore), mib(maxUsage), chartMemoryLimit>>20, failcnt)
	}
	if peak >= chartMemoryLimit {
		t.Errorf("the agent's peak RSS %d MiB reached the chart's limit", peak>>20)
	}
	log := a.log(t)
	if !strings.Contains(log, "skipped a batch that does not decompress within kafka.maxDecompressBatchBytes") ||
		!strings.Contains(log, fmt.Sprintf(`"firstOffset":%d`, at)) {
		t.Errorf("no error line for the skipped batch at offset %d", at)
	}
	if got := scrape(t, a.metricsURL(t)); !strings.Contains(got, `port_runner_messages_total{outcome="skipped_batch"} 1`+"\n") {
		t.Errorf("messages_total{outcome=\"skipped_batch\"} is not 1:\n%s", grepLines(got, "messages_total"))
	}

	// The batch is committed past: a restarted agent neither fetches it again nor skips it.
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !a.wait(30*time.Second) || !a.state().Success() {
		t.Fatalf("the agent did not exit 0 within 30s of SIGTERM: %v", a.state())
	}
	b := startIn(t, e, group)
	e.produceRun(t, "r_after_restart", "ok")
	if run := e.waitClosed(t, b, "r_after_restart", 60*time.Second); run.Status != "SUCCESS" {
		t.Fatalf("the run after the restart: %+v", run)
	}
	if strings.Contains(b.log(t), "skipped a batch") {
		t.Errorf("the restarted agent met the skipped batch again")
	}
}

// startIn starts an agent with one action, ok (`true`), in group when there is one.
func startIn(t *testing.T, e *env, group *memoryGroup) *agentProc {
	t.Helper()
	a := e.startAgent(t, e.config(t, "actions:\n  ok: {command: [\"true\"]}\n"))
	if group != nil {
		if err := group.add(a.pid()); err != nil {
			t.Fatalf("moving the agent into its memory group: %v", err)
		}
	}
	return a
}

func scrape(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func grepLines(text, substr string) string {
	var out []string
	for line := range strings.Lines(text) {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

package agent_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/port-runner/port-runner/executor"
	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/test/harness"
)

// execution is one run of a command, as its own start/end lines say.
type execution struct{ start, end float64 }

// readExecutions parses "start|end RUN_ID UNIXTIME" lines.
func readExecutions(t *testing.T, path string) map[string][]execution {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]execution{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("bad line %q", line)
		}
		at, err := strconv.ParseFloat(f[2], 64)
		if err != nil {
			t.Fatal(err)
		}
		ex := out[f[1]]
		switch f[0] {
		case "start":
			out[f[1]] = append(ex, execution{start: at})
		case "end":
			if len(ex) == 0 || ex[len(ex)-1].end != 0 {
				t.Fatalf("end of %s without a start: %q", f[1], line)
			}
			ex[len(ex)-1].end = at
		}
	}
	return out
}

// TestRollingUpdateNeverOverlapsARun: two agents run long commands that trap SIGTERM and
// take 4s to exit, on every partition; a third agent joins (the rollout's surge) and takes
// partitions at once while their runs go on where they started; then one of the first
// agents gets SIGTERM. With rerun and with fail: no run is cancelled for its partition's
// move, no two executions of a run overlap, Port never has a run's termination before its
// last execution ended, and each run is terminated once.
func TestRollingUpdateNeverOverlapsARun(t *testing.T) {
	h := harness.New(t, 4)
	dir := t.TempDir()
	record := filepath.Join(dir, "executions")
	gate := filepath.Join(dir, "gate")
	script := harness.Script(t, `now() { date +%s.%N; }
echo "start $PORT_RUN_ID $(now)" >> "$1"
trap 'sleep 4; echo "end $PORT_RUN_ID $(now)" >> "$1"; exit 143' TERM
while [ ! -e "$2" ]; do sleep 0.05; done
echo "end $PORT_RUN_ID $(now)" >> "$1"
`)
	cfg := h.Config(t, harness.Actions(fmt.Sprintf(`
  rerun_action: {command: [%[1]q, %[2]q, %[3]q], onInterrupted: rerun}
  fail_action: {command: [%[1]q, %[2]q, %[3]q], onInterrupted: fail}
`, script, record, gate)))
	cfg.Executor.ShutdownTimeout = config.Duration(time.Second)
	cfg.Executor.MaxConcurrent = 8 // however the runs hash over partitions, all start at once

	var ids []string
	for i := range 8 {
		action := []string{"rerun_action", "fail_action"}[i%2]
		id := fmt.Sprintf("r_roll_%d", i)
		ids = append(ids, id)
		h.NewRun(t, id, action)
	}
	// Two agents: every run starts at once.
	stopA := h.Start(t, cfg, harness.Named("A")).Stop
	stopB := h.Start(t, cfg, harness.Named("B")).Stop
	started := func() int { return strings.Count(readFile(record), "start ") }
	waitcond.For(t, "every run to start", 60*time.Second, func() bool { return started() >= len(ids) })

	// The surge: a third agent joins and gets partitions at once.
	c := h.Start(t, cfg, harness.Named("C"))
	stopC := c.Stop
	c.WaitReady(t)
	// Then one of the first agents is stopped (SIGTERM: shutdownTimeout 1s, cancel, close).
	if err := stopA(); err != nil {
		t.Fatalf("agent A: %v", err)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if r := h.WaitClosed(t, id); strings.Contains(r.StatusLabel, "reassigned") {
			t.Errorf("%s: cancelled for its partition's move: %s %q", id, r.Status, r.StatusLabel)
		}
	}
	for _, stop := range []func() error{stopB, stopC} {
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}

	execs := readExecutions(t, record)
	for _, id := range ids {
		r, _ := h.Emu.Run(id)
		if r.Terminations != 1 || r.RejectedTerminations != 0 {
			t.Errorf("%s: %d terminations, %d rejected", id, r.Terminations, r.RejectedTerminations)
		}
		ex := execs[id]
		if len(ex) == 0 {
			t.Errorf("%s never executed", id)
			continue
		}
		for i, e := range ex {
			if e.end == 0 {
				t.Errorf("%s: execution %d never ended", id, i)
			}
			if i > 0 && e.start < ex[i-1].end {
				t.Errorf("%s: execution %d started at %.3f, before execution %d ended at %.3f", id, i, e.start, i-1, ex[i-1].end)
			}
		}
		last := ex[len(ex)-1].end
		if r.EndedAt == nil {
			t.Errorf("%s: not closed in Port", id)
		} else if ended := float64(r.EndedAt.UnixNano()) / 1e9; ended < last {
			t.Errorf("%s: Port closed it at %.3f, before its last execution ended at %.3f (%s %q)", id, ended, last, r.Status, r.StatusLabel)
		}
		t.Logf("%s: %d execution(s), %s %q", id, len(ex), r.Status, r.StatusLabel)
	}
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// The drain, and so the leases' bound, is computed from the executor's kill grace.
func TestDrainCoversTheKillGrace(t *testing.T) {
	if config.KillGrace != executor.DefaultKillGrace {
		t.Fatalf("config.KillGrace %s, executor.DefaultKillGrace %s", config.KillGrace, executor.DefaultKillGrace)
	}
}

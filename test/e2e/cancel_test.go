package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/port-runner/port-runner/executor"
	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/test/harness"
)

// A command writes its own pid and its background child's to $PIDS, then runs: quietly (no
// output), or chattily (a line every 50ms) and deaf to SIGTERM, so only the SIGKILL after the
// kill grace ends it.
const (
	quietScript  = `sleep 300 & echo $! > "$PIDS"; echo $$ >> "$PIDS"; wait`
	chattyScript = `trap '' TERM; sleep 300 & echo $! > "$PIDS"; echo $$ >> "$PIDS"
i=0; while :; do i=$((i+1)); echo "line $i"; sleep 0.05; done`
)

// slack is what a loaded machine may add to the interval and the kill grace; the commands
// would otherwise run for 300s.
const slack = 15 * time.Second

// pids waits for the command to have written its pids, and returns them.
func pids(t *testing.T, file string) []int {
	t.Helper()
	var out []int
	waitcond.For(t, "the command to start", 30*time.Second, func() bool {
		b, _ := os.ReadFile(file)
		out = out[:0]
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
		return len(out) == 2
	})
	return out
}

// alive: the process exists and is not a zombie waiting to be reaped.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// checked waits until the agent has asked Port about the run (path) at least once: from
// then on it is a long run, asked about every interval.
func checked(t *testing.T, h *harness.Env, path string) {
	t.Helper()
	waitcond.For(t, "a status check of "+path, 30*time.Second, func() bool {
		for _, r := range h.Emu.Requests() {
			if r.Method == "GET" && (r.Path == path || r.Path == "/v1/actions/runs") {
				return true
			}
		}
		return false
	})
}

// stoppedWithin waits for every pid to be gone and fails unless that took less than limit
// since the cancel.
func stoppedWithin(t *testing.T, ps []int, cancelledAt time.Time, limit time.Duration) time.Duration {
	t.Helper()
	waitcond.For(t, "the command's processes to be gone", limit+time.Minute, func() bool {
		for _, p := range ps {
			if alive(p) {
				return false
			}
		}
		return true
	})
	took := time.Since(cancelledAt)
	if took > limit {
		t.Fatalf("the command stopped %s after Port ended the run, over %s", took, limit)
	}
	return took
}

// noTermination: the agent sent the run no termination of its own (Port has the user's).
func noTermination(t *testing.T, h *harness.Env, id string) emulator.RunState {
	t.Helper()
	run, _ := h.Emu.Run(id)
	if run.Terminations != 1 || run.RejectedTerminations != 0 {
		t.Fatalf("run %s: %d terminations, %d refused: want the user's one only", id, run.Terminations, run.RejectedTerminations)
	}
	for _, r := range h.Emu.Requests() {
		if strings.Contains(r.Path, id) && (bytes.Contains(r.Body, []byte("terminationStatus")) || bytes.Contains(r.Body, []byte(`"COMPLETED"`))) {
			t.Fatalf("the agent tried to close a run Port ended: %s %s %s", r.Method, r.Path, r.Body)
		}
	}
	return run
}

// startCancellable runs an agent whose long runs are checked every interval and whose one
// action runs script with $PIDS, the file pids reads; node, unless "", is the action's
// workflow node url.
func startCancellable(t *testing.T, h *harness.Env, interval time.Duration, action, script, node string) (a *harness.Agent, pidFile string) {
	t.Helper()
	pidFile = filepath.Join(t.TempDir(), "pids")
	overlay := fmt.Sprintf("port: {runStatusInterval: %s}\nactions:\n  %s:\n    command: [/bin/sh, -c, %q]\n    env: {PIDS: %q}\n",
		interval, action, script, `"`+pidFile+`"`)
	if node != "" {
		overlay += fmt.Sprintf("    workflowNode: {url: %q}\n", node)
	}
	return h.Start(t, h.Config(t, quickLogs+overlay)), pidFile
}

// waitCancelledInPort waits until the agent is done with the action's run cancelled in Port:
// it logs so once its last lines went (or could not go) to Port, after it counted the run,
// so what Port holds of the run is final from then on.
func waitCancelledInPort(t *testing.T, a *harness.Agent, action string) {
	t.Helper()
	waitcond.For(t, "the agent to be done with the run cancelled in Port", 30*time.Second, func() bool {
		return a.Logs.FilterMessage("run cancelled in Port: its command was stopped; no closing sent").Len() == 1
	})
	if n := testutil.ToFloat64(a.Metrics.RunsTotal.WithLabelValues(action, "cancelled_in_port")); n != 1 {
		t.Fatalf("runs_total{%s, cancelled_in_port} = %v, want 1", action, n)
	}
}

// A quiet run that Port shows ended (a user set it to FAILURE) is found by the status check
// of long runs and stopped within the interval plus the kill grace: SIGTERM, its processes
// gone, no closing of the agent's, its last lines sent where Port takes them.
func TestCancelledInPortQuiet(t *testing.T) {
	h := harness.New(t, 1, harness.WithPort(func(o *emulator.Options) { o.LogsAfterTermination = true }))
	interval := time.Second
	a, pidFile := startCancellable(t, h, interval, "quiet", quietScript, "")
	run, err := h.Emu.CreateRun(context.Background(), "quiet", emulator.CreateRunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	ps := pids(t, pidFile)
	checked(t, h, "/v1/actions/runs/"+run.ID)
	at := time.Now()
	h.AsUser(t, "PATCH", "/v1/actions/runs/"+run.ID, nil, map[string]string{"status": "FAILURE"})
	took := stoppedWithin(t, ps, at, interval+executor.DefaultKillGrace+slack)
	waitCancelledInPort(t, a, "quiet")
	got := noTermination(t, h, run.ID)
	if last := logText(got); !strings.Contains(last, "port-runner: cancelled: the run was ended in Port after") {
		t.Fatalf("the last lines did not reach Port, which takes them here:\n%s", last)
	}
	if !strings.Contains(a.LogText(), "run cancelled in Port: stopping its command") {
		t.Fatal("the agent's log does not say the run was cancelled in Port")
	}
	t.Logf("stopped %s after the cancel (interval %s, kill grace %s)", took, interval, executor.DefaultKillGrace)
}

// A chatty run learns it from Port refusing its next log batch, long before any status
// check (the interval here is an hour); deaf to SIGTERM, it gets SIGKILL after the kill grace.
// Meanwhile /status shows it cancelled in Port.
func TestCancelledInPortChatty(t *testing.T) {
	h := harness.New(t, 1)
	a, pidFile := startCancellable(t, h, time.Hour, "chatty", chattyScript, "")
	run, err := h.Emu.CreateRun(context.Background(), "chatty", emulator.CreateRunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	ps := pids(t, pidFile)
	at := time.Now()
	h.AsUser(t, "PATCH", "/v1/actions/runs/"+run.ID, nil, map[string]string{"status": "FAILURE"})
	waitcond.For(t, "/status to show the run cancelled in Port", 30*time.Second, func() bool {
		st := a.Status(t)
		return len(st.Runs) == 1 && st.Runs[0].Outcome == "cancelled in Port"
	})
	took := stoppedWithin(t, ps, at, executor.DefaultKillGrace+slack)
	if took < executor.DefaultKillGrace {
		t.Fatalf("a command deaf to SIGTERM stopped after %s, before the kill grace", took)
	}
	waitCancelledInPort(t, a, "chatty")
	noTermination(t, h, run.ID)
	t.Logf("stopped %s after the cancel", took)
}

// A workflow cancelled with force fails its running node run in Port: the agent stops the
// node's command and completes nothing itself.
func TestWorkflowCancelledStopsItsNodeRun(t *testing.T) {
	h := harness.New(t, 1)
	interval := time.Second
	a, pidFile := startCancellable(t, h, interval, "build", quietScript, emulator.NodeURL("ci", "build"))
	nr, err := h.Emu.CreateNodeRun(context.Background(), "ci", "build", emulator.CreateNodeRunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	ps := pids(t, pidFile)
	checked(t, h, "/v1/workflows/nodes/runs/"+nr.ID)
	at := time.Now()
	h.AsUser(t, "POST", "/v1/workflows/runs/"+nr.WorkflowRunID+"/cancel", url.Values{"force": {"true"}}, nil)
	stoppedWithin(t, ps, at, interval+executor.DefaultKillGrace+slack)
	waitCancelledInPort(t, a, "build")
	if got := noTermination(t, h, nr.ID); got.Result != "FAILED" {
		t.Fatalf("node run %+v", got)
	}
	if wf, _ := h.Emu.WorkflowRun(nr.WorkflowRunID); wf.Status != "COMPLETED" || wf.Result != "CANCELLED" {
		t.Fatalf("workflow run %+v", wf)
	}
}

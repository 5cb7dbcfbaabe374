package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/port-runner/port-runner/executor"
	"github.com/port-runner/port-runner/internal/agent"
	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/metrics"
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

// portAPI sends one request to the emulator as a user of Port's API would (the UI does the
// same): with a token of the organization's.
func (h *harness) portAPI(t *testing.T, method, path string, body any) {
	t.Helper()
	do := func(method, path, token string, body any) *http.Response {
		b, _ := json.Marshal(body)
		req, err := http.NewRequest(method, h.baseURL+path, bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := do("POST", "/v1/auth/access_token", "", map[string]string{"clientId": "e2e-client", "clientSecret": secret})
	var tok struct{ AccessToken string }
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	resp = do(method, path, tok.AccessToken, body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: HTTP %d", method, path, resp.StatusCode)
	}
}

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
func (h *harness) checked(t *testing.T, path string) {
	t.Helper()
	waitcond.For(t, "a status check of "+path, 30*time.Second, func() bool {
		for _, r := range h.emu.Requests() {
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
func (h *harness) noTermination(t *testing.T, id string) emulator.RunState {
	t.Helper()
	run, _ := h.emu.Run(id)
	if run.Terminations != 1 || run.RejectedTerminations != 0 {
		t.Fatalf("run %s: %d terminations, %d refused: want the user's one only", id, run.Terminations, run.RejectedTerminations)
	}
	for _, r := range h.emu.Requests() {
		if strings.Contains(r.Path, id) && (bytes.Contains(r.Body, []byte("terminationStatus")) || bytes.Contains(r.Body, []byte(`"COMPLETED"`))) {
			t.Fatalf("the agent tried to close a run Port ended: %s %s %s", r.Method, r.Path, r.Body)
		}
	}
	return run
}

func (h *harness) cancelConfig(t *testing.T, interval time.Duration, actions string) *config.Config {
	t.Helper()
	cfg := h.config(t, actions)
	cfg.Port.RunStatusInterval = config.Duration(interval)
	return cfg
}

// A quiet run that Port shows ended (a user set it to FAILURE) is found by the status check
// of long runs and stopped within the interval plus the kill grace: SIGTERM, its processes
// gone, no closing of the agent's, its last lines sent where Port takes them.
func TestCancelledInPortQuiet(t *testing.T) {
	h := newHarness(t, func(o *emulator.Options) { o.LogsAfterTermination = true })
	interval := time.Second
	pidFile := t.TempDir() + "/pids"
	cfg := h.cancelConfig(t, interval, fmt.Sprintf(`
  quiet:
    command: [/bin/sh, -c, %q]
    env: {PIDS: %q}
`, quietScript, `"`+pidFile+`"`))
	h.start(t, cfg, agent.Deps{})
	run, err := h.emu.CreateRun(context.Background(), "quiet", emulator.CreateRunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	ps := pids(t, pidFile)
	h.checked(t, "/v1/actions/runs/"+run.ID)
	at := time.Now()
	h.portAPI(t, "PATCH", "/v1/actions/runs/"+run.ID, map[string]string{"status": "FAILURE"})
	took := stoppedWithin(t, ps, at, interval+executor.DefaultKillGrace+slack)
	cancelled := h.metrics.RunsTotal.WithLabelValues("quiet", "cancelled_in_port")
	waitcond.For(t, "runs_total{cancelled_in_port}", 30*time.Second, func() bool { return testutil.ToFloat64(cancelled) == 1 })
	got := h.noTermination(t, run.ID)
	if last := logText(got); !strings.Contains(last, "port-runner: cancelled: the run was ended in Port after") {
		t.Fatalf("the last lines did not reach Port, which takes them here:\n%s", last)
	}
	if !strings.Contains(h.agentLogText(), "run cancelled in Port: stopping its command") {
		t.Fatal("the agent's log does not say the run was cancelled in Port")
	}
	t.Logf("stopped %s after the cancel (interval %s, kill grace %s)", took, interval, executor.DefaultKillGrace)
}

// A chatty run learns it from Port refusing its next log batch, long before any status
// check (the interval here is an hour); deaf to SIGTERM, it gets SIGKILL after the kill grace.
// Meanwhile /status shows it cancelled in Port.
func TestCancelledInPortChatty(t *testing.T) {
	h := newHarness(t, nil)
	pidFile := t.TempDir() + "/pids"
	cfg := h.cancelConfig(t, time.Hour, fmt.Sprintf(`
  chatty:
    command: [/bin/sh, -c, %q]
    env: {PIDS: %q}
`, chattyScript, `"`+pidFile+`"`))
	h.start(t, cfg, agent.Deps{})
	status := httptest.NewServer(h.metrics.Handler(func() error { return nil }))
	defer status.Close()
	run, err := h.emu.CreateRun(context.Background(), "chatty", emulator.CreateRunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	ps := pids(t, pidFile)
	at := time.Now()
	h.portAPI(t, "PATCH", "/v1/actions/runs/"+run.ID, map[string]string{"status": "FAILURE"})
	waitcond.For(t, "/status to show the run cancelled in Port", 30*time.Second, func() bool {
		resp, err := http.Get(status.URL + "/status")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var st metrics.Status
		_ = json.NewDecoder(resp.Body).Decode(&st)
		return len(st.Runs) == 1 && st.Runs[0].Outcome == "cancelled in Port"
	})
	took := stoppedWithin(t, ps, at, executor.DefaultKillGrace+slack)
	if took < executor.DefaultKillGrace {
		t.Fatalf("a command deaf to SIGTERM stopped after %s, before the kill grace", took)
	}
	cancelled := h.metrics.RunsTotal.WithLabelValues("chatty", "cancelled_in_port")
	waitcond.For(t, "runs_total{cancelled_in_port}", 30*time.Second, func() bool { return testutil.ToFloat64(cancelled) == 1 })
	h.noTermination(t, run.ID)
	t.Logf("stopped %s after the cancel", took)
}

// A workflow cancelled with force fails its running node run in Port: the agent stops the
// node's command and completes nothing itself.
func TestWorkflowCancelledStopsItsNodeRun(t *testing.T) {
	h := newHarness(t, nil)
	interval := time.Second
	pidFile := t.TempDir() + "/pids"
	cfg := h.cancelConfig(t, interval, fmt.Sprintf(`
  build:
    command: [/bin/sh, -c, %q]
    env: {PIDS: %q}
    workflowNode: {url: %q}
`, quietScript, `"`+pidFile+`"`, emulator.NodeURL("ci", "build")))
	h.start(t, cfg, agent.Deps{})
	nr, err := h.emu.CreateNodeRun(context.Background(), "ci", "build", emulator.CreateNodeRunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	ps := pids(t, pidFile)
	h.checked(t, "/v1/workflows/nodes/runs/"+nr.ID)
	at := time.Now()
	h.portAPI(t, "POST", "/v1/workflows/runs/"+nr.WorkflowRunID+"/cancel?force=true", nil)
	stoppedWithin(t, ps, at, interval+executor.DefaultKillGrace+slack)
	cancelled := h.metrics.RunsTotal.WithLabelValues("build", "cancelled_in_port")
	waitcond.For(t, "runs_total{cancelled_in_port}", 30*time.Second, func() bool { return testutil.ToFloat64(cancelled) == 1 })
	if got := h.noTermination(t, nr.ID); got.Result != "FAILED" {
		t.Fatalf("node run %+v", got)
	}
	if wf, _ := h.emu.WorkflowRun(nr.WorkflowRunID); wf.Status != "COMPLETED" || wf.Result != "CANCELLED" {
		t.Fatalf("workflow run %+v", wf)
	}
}

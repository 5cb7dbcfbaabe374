//go:build linux

package agent_test

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/port-runner/port-runner/executor"
	"github.com/port-runner/port-runner/internal/kfaketest"
	"github.com/port-runner/port-runner/internal/shim"
	"github.com/port-runner/port-runner/internal/shim/shimtest"
	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/test/harness"
)

// TestATakeThatFailsAfterTheForkNeverStartsTheCommand: the broker refuses the run's start
// mark while the run is readied and its shim (the C one: forked and set up to the command's
// exec) waits for its go; the agent stops, so the take fails. The command never started,
// nothing of the run reached Port, and nothing of it is left on disk (README "Delivery").
func TestATakeThatFailsAfterTheForkNeverStartsTheCommand(t *testing.T) {
	h, dir, prefix, kind := refusingEnv(t)
	marker := filepath.Join(dir, "ran")
	cfg := h.Config(t, harness.Actions(fmt.Sprintf(`
  act: {command: [%q, %q]}
`, harness.Script(t, `: > "$1"`), marker)))
	cfg.Executor.RunsDir = filepath.Join(dir, "runs")
	var refusing atomic.Bool
	refusing.Store(true)
	kfaketest.RefuseCommits(h.Broker.Fake, &refusing, nil)
	h.NewRun(t, "r_gated", "act")
	a := h.Start(t, cfg, harness.Shim(prefix, kind))

	var waiting []int
	waitcond.For(t, "the run's shim to wait for its go", 30*time.Second, func() bool {
		waiting = gatedShims()
		return len(waiting) == 1 && (kind != executor.ShimC || len(children(waiting[0])) == 1)
	})
	if kind == executor.ShimC {
		waiting = append(waiting, children(waiting[0])...)
	}
	a.Cancel() // the take's context ends: it fails
	waitcond.For(t, "the unstarted run's processes to end", 30*time.Second, func() bool {
		for _, pid := range waiting {
			if processAlive(pid) {
				return false
			}
		}
		return true
	})
	refusing.Store(false) // the agent's last commits may go
	select {
	case <-a.Done():
	case <-time.After(60 * time.Second):
		t.Fatal("the agent did not stop")
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command ran though its start mark never became durable")
	}
	if n := a.Logs.FilterMessage("not started; left for the next owner").Len(); n != 1 {
		t.Errorf("%d 'not started; left' lines, want 1", n)
	}
	// The lease's end at the handover may stop the command too; this line says the gate did.
	if n := a.Logs.FilterMessage("run started").Len(); n != 0 {
		t.Errorf("%d 'run started' lines for a run whose take failed", n)
	}
	for _, rq := range h.Emu.Requests() {
		if rq.Method != "GET" && strings.Contains(rq.Path, "r_gated") {
			t.Errorf("Port got %s %s for a run never started", rq.Method, rq.Path)
		}
	}
	_ = filepath.WalkDir(cfg.Executor.RunsDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("left on disk: %s", path)
		}
		return nil
	})
}

// refusingEnv is an Env whose broker can refuse commits (kfaketest.RefuseCommits), a
// directory for the test and the shim built into it (testShim); the test is skipped on a
// real broker.
func refusingEnv(t *testing.T) (h *harness.Env, dir string, prefix []string, kind string) {
	t.Helper()
	h = harness.New(t, 1)
	if h.Broker.Fake == nil {
		t.Skip("needs the in-process broker to refuse the start mark's commit")
	}
	dir = t.TempDir()
	prefix, kind = testShim(t, dir)
	return h, dir, prefix, kind
}

// testShim is the C shim built into dir, else the Go one where no C compiler is at hand.
func testShim(t *testing.T, dir string) ([]string, string) {
	t.Helper()
	if c, _, err := shimtest.BuildC(dir); err == nil {
		return []string{c}, executor.ShimC
	} else if shimtest.Required() {
		t.Fatal(err)
	}
	g, err := shimtest.BuildGo(dir)
	if err != nil {
		t.Fatal(err)
	}
	return []string{g}, executor.ShimGo
}

// gatedShims are this process's children that are shims waiting for a go (shim.GateFlag).
func gatedShims() []int {
	var out []int
	for _, pid := range children(os.Getpid()) {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if strings.Contains(string(b), "\x00"+shim.GateFlag+"\x00") {
			out = append(out, pid)
		}
	}
	return out
}

// children are pid's children, from its threads' lists.
func children(pid int) []int {
	lists, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, l := range lists {
		b, _ := os.ReadFile(l)
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// processAlive says whether pid runs (a zombie has ended).
func processAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || (s[i+2] != 'Z' && s[i+2] != 'X')
}

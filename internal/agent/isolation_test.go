package agent_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/agent"
	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/portproxy"
	"github.com/port-runner/port-runner/internal/sandbox"
	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/test/harness"
)

// README "Runs and each other": two runs at once; the second finds the first's
// PORT_API_TOKEN and PORT_API_URL in /proc/<pid>/environ (same uid, so it can read them) and
// tries to write to the first run's log and change its link: refused with 401, and the
// first run's own requests still work.
func TestStolenTokenUselessFromAnotherRun(t *testing.T) {
	if !portproxy.ProcessBindingSupported() {
		t.Skip("process binding needs Linux /proc")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	h := harness.New(t, 1)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "release")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	startedA := filepath.Join(dir, "a-started")
	// Run A: calls Port itself, says it is running, then blocks until B has tried.
	victim := harness.Script(t, `set -eu
echo "own: $(curl -q -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $PORT_API_TOKEN" -H 'Content-Type: application/json' \
  "$PORT_API_URL/actions/runs/$PORT_RUN_ID/logs" -d '{"message":"A wrote this itself"}')"
touch "$1"
read -r _ < "$2"
echo "own after: $(curl -q -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $PORT_API_TOKEN" "$PORT_API_URL/actions/runs/$PORT_RUN_ID")"
`)
	// Run B: scans every environ it can read for run A's, then uses A's token and URL.
	thief := harness.Script(t, "set -u\n"+harness.StealToken("r_victim")+`echo "found token: ${#tok} chars"
echo "stolen log: $(curl -q -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
  "$url/actions/runs/r_victim/logs" -d '{"message":"B WROTE THIS"}')"
echo "stolen link: $(curl -q -sS -o /dev/null -w '%{http_code}' -X PATCH -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
  "$url/actions/runs/r_victim" -d '{"link":["https://evil.example"]}')"
echo go > "$1"
`)
	cfg := h.Config(t, harness.Actions(fmt.Sprintf(`
  victim:
    command: [%q, %q, %q]
  thief:
    command: [%q, %q]
`, victim, startedA, fifo, thief, fifo)))
	if cfg.Security.RunIsolation != "process" {
		t.Fatalf("default runIsolation %q, want process", cfg.Security.RunIsolation)
	}
	h.Emu.RegisterRun("r_victim", "victim")
	h.Emu.RegisterRun("r_thief", "thief")
	stop := h.Start(t, cfg).Stop
	h.ProduceRun(t, "r_victim", "victim")
	waitcond.For(t, "run A to be running", 30*time.Second, func() bool {
		_, err := os.Stat(startedA)
		return err == nil
	})
	h.ProduceRun(t, "r_thief", "thief")

	b := h.WaitClosed(t, "r_thief")
	a := h.WaitClosed(t, "r_victim")
	logOf := func(msgs []string) string { return strings.Join(msgs, "\n") }
	var la, lb []string
	for _, e := range a.Logs {
		la = append(la, e.Message)
	}
	for _, e := range b.Logs {
		lb = append(lb, e.Message)
	}
	for _, want := range []string{"found token: 64 chars", "stolen log: 401", "stolen link: 401"} {
		if !strings.Contains(logOf(lb), want) {
			t.Errorf("run B's log lacks %q:\n%s", want, logOf(lb))
		}
	}
	if strings.Contains(logOf(la), "B WROTE THIS") || len(a.Link) != 0 {
		t.Errorf("run B reached run A: log\n%s\nlinks %q", logOf(la), a.Link)
	}
	for _, want := range []string{"A wrote this itself", "own: 200", "own after: 200"} {
		if !strings.Contains(logOf(la), want) {
			t.Errorf("run A's log lacks %q:\n%s", want, logOf(la))
		}
	}
	if a.Status != "SUCCESS" || b.Status != "SUCCESS" {
		t.Errorf("runs ended %s / %s", a.Status, b.Status)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// The agent refuses to start where the config asks for isolation this machine cannot give,
// or lets an action's sandbox reach what it keeps from every command.
func TestIsolationTheAgentRefuses(t *testing.T) {
	h := harness.New(t, 1)
	script := harness.Script(t, "true")
	for _, tc := range []struct {
		name string
		shim []string
		edit func(c *config.Config)
		want string
	}{
		{"sandbox required without the shim", nil, func(c *config.Config) { c.Executor.Sandbox = config.SandboxRequired }, "executor.sandbox: required"},
		{"runAs without the shim", nil, func(c *config.Config) { c.Executor.RunAs = "47340-47347" }, "need the exec shim"},
		{"a sandbox write over the run directories", []string{"/bin/true"}, func(c *config.Config) {
			c.Executor.RunsDir = filepath.Join(t.TempDir(), "runs")
			a := c.Actions["a"]
			a.Sandbox.Write = []string{filepath.Dir(c.Executor.RunsDir)}
			c.Actions["a"] = a
		}, "actions.a.sandbox: write"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.shim) > 0 && sandbox.LandlockABI() < 1 {
				t.Skip("not checked: no Landlock here, so no sandbox to keep anything")
			}
			cfg := h.Config(t, harness.Actions(fmt.Sprintf("  a:\n    command: [%q]\n", script)))
			tc.edit(cfg)
			_, err := agent.New(cfg, agent.Deps{Shim: tc.shim, ShimKind: "test"})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("agent.New: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// An agent running as root without executor.runAs says, wherever it reports its isolation
// (validate, the start-up log, /status), that its commands run as root, which the sandbox
// does not contain; an agent not root, or with runAs, does not.
func TestIsolationSaysCommandsRunAsRoot(t *testing.T) {
	h := harness.New(t, 1)
	cfg := h.Config(t, harness.Actions(fmt.Sprintf("  a:\n    command: [%q]\n", harness.Script(t, "true"))))
	cfg.Executor.Sandbox = config.SandboxOff
	summary, err := agent.Isolation(cfg, agent.Deps{Shim: []string{"/bin/true"}, ShimKind: "test"})
	if err != nil {
		t.Fatal(err)
	}
	said := strings.Contains(summary, "commands run as root")
	if root := os.Geteuid() == 0; said != root {
		t.Fatalf("running as root: %v; the isolation says so: %v:\n%s", root, said, summary)
	}
	if os.Geteuid() != 0 {
		return
	}
	cfg.Executor.RunAs, cfg.Executor.MaxConcurrent = "47340-47347", 8
	if summary, err = agent.Isolation(cfg, agent.Deps{Shim: []string{"/bin/true"}, ShimKind: "test"}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(summary, "commands run as root") {
		t.Fatalf("with executor.runAs, the isolation says commands run as root:\n%s", summary)
	}
}

// With the run directories in /dev/shm (the default without RUNTIME_DIRECTORY or
// executor.runsDir), no action can be given it for shared memory, which Python's
// multiprocessing (Ansible) needs: the isolation says so, and says nothing of it with the
// run directories elsewhere.
func TestIsolationSaysWhenCommandsHaveNoSharedMemory(t *testing.T) {
	if sandbox.LandlockABI() < 1 {
		t.Skip("no Landlock here: no sandbox")
	}
	if fi, err := os.Stat("/dev/shm"); err != nil || !fi.IsDir() {
		t.Skip("no /dev/shm here")
	}
	h := harness.New(t, 1)
	cfg := h.Config(t, harness.Actions(fmt.Sprintf("  a:\n    command: [%q]\n", harness.Script(t, "true"))))
	for runsDir, want := range map[string]bool{"/dev/shm/port-runner-isolation-test": true, filepath.Join(t.TempDir(), "runs"): false} {
		cfg.Executor.RunsDir = runsDir
		summary, err := agent.Isolation(cfg, agent.Deps{Shim: []string{"/bin/true"}, ShimKind: "test"})
		if err != nil {
			t.Fatal(err)
		}
		if said := strings.Contains(summary, "no action can be given /dev/shm"); said != want {
			t.Errorf("runs in %s: says no action can be given /dev/shm: %v, want %v:\n%s", runsDir, said, want, summary)
		}
	}
}

// Run directories the agent cannot make where RUNTIME_DIRECTORY says, with executor.runsDir
// unset: the agent refuses to start, naming where the path came from, not a setting the
// user never wrote.
func TestAnUnusableRuntimeDirectoryIsNamed(t *testing.T) {
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("RUNTIME_DIRECTORY", notADir)
	h := harness.New(t, 1)
	cfg := h.Config(t, harness.Actions(fmt.Sprintf("  a:\n    command: [%q]\n", harness.Script(t, "true"))))
	cfg.Executor.RunsDir = ""
	a, err := h.New(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = a.Run(ctx, ctx)
	if err == nil || !strings.Contains(err.Error(), "RUNTIME_DIRECTORY") || !strings.Contains(err.Error(), notADir) {
		t.Fatalf("Run: %v; want an error naming RUNTIME_DIRECTORY and %s", err, notADir)
	}
}

package agent_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/test/harness"
)

// A run directory the agent cannot remove (a file its command made immutable, which not
// even root unlinks) is logged, with the directory and the system's reason but not the
// name the command chose inside it.
func TestARunDirectoryLeftBehindIsLogged(t *testing.T) {
	if _, err := exec.LookPath("chattr"); err != nil {
		t.Skip("not checked: chattr (e2fsprogs) is not installed")
	}
	h := harness.New(t, 1)
	runs := t.TempDir()
	t.Cleanup(func() { _ = exec.Command("chattr", "-R", "-i", runs).Run() }) // before the TempDir goes
	cfg := h.Config(t, fmt.Sprintf("executor: {runsDir: %q}\n", runs)+harness.Actions(`
  stuck:
    command: ["sh", "-c", "f=\"$(dirname \"$PORT_RUN_FILE\")/name-of-the-commands\"; echo x > \"$f\" && chattr +i \"$f\" && echo made-immutable"]
`))
	h.Emu.RegisterRun("r_stuck", "stuck")
	a := h.Start(t, cfg)
	h.ProduceRun(t, "r_stuck", "stuck")
	closed := h.WaitClosed(t, "r_stuck")
	var out []string
	for _, e := range closed.Logs {
		out = append(out, e.Message)
	}
	if !strings.Contains(strings.Join(out, "\n"), "made-immutable") {
		t.Skipf("not checked: chattr +i is not allowed here (CAP_LINUX_IMMUTABLE, a file system that keeps the flag): %q", out)
	}
	waitcond.For(t, "the warning", 30*time.Second, func() bool {
		return a.Logs.FilterMessageSnippet("run directory not removed").Len() > 0
	})
	e := a.Logs.FilterMessageSnippet("run directory not removed").All()[0]
	fields := e.ContextMap()
	if dir, _ := fields["dir"].(string); !strings.HasPrefix(dir, runs) {
		t.Errorf("dir %q, want the run's directory under %s", dir, runs)
	}
	if reason := fmt.Sprint(fields["reason"]); reason == "" || strings.Contains(reason, "name-of-the-commands") {
		t.Errorf("reason %q: want the system's reason alone", reason)
	}
}

// A stopped agent's run directory the starting agent cannot remove (it may hold decrypted
// inputs) is logged with the directory's name and the system's reason, never a name its
// command chose inside it; the agent runs all the same.
func TestAStoppedAgentsRunDirectoryLeftBehindIsLogged(t *testing.T) {
	if _, err := exec.LookPath("chattr"); err != nil {
		t.Skip("not checked: chattr (e2fsprogs) is not installed")
	}
	h := harness.New(t, 1)
	runs := t.TempDir()
	stuck := filepath.Join(runs, "agent-crashed", "run-1", "name-of-the-commands")
	if err := os.MkdirAll(filepath.Dir(stuck), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stuck, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chattr", "+i", stuck).CombinedOutput(); err != nil {
		t.Skipf("not checked: chattr +i is not allowed here (CAP_LINUX_IMMUTABLE, a file system that keeps the flag): %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("chattr", "-i", stuck).Run() }) // before the TempDir goes
	cfg := h.Config(t, fmt.Sprintf("executor: {runsDir: %q}\n", runs)+harness.Actions(`
  ok:
    command: ["true"]
`))
	h.Emu.RegisterRun("r_ok", "ok")
	a := h.Start(t, cfg)
	h.ProduceRun(t, "r_ok", "ok")
	if got := h.WaitClosed(t, "r_ok").Status; got != "SUCCESS" {
		t.Errorf("run closed %s, want SUCCESS", got)
	}
	warned := a.Logs.FilterMessageSnippet("run directories of stopped agents not removed").All()
	if len(warned) != 1 {
		t.Fatalf("%d warnings about stopped agents' directories, want 1", len(warned))
	}
	fields := warned[0].ContextMap()
	if dirs := fmt.Sprint(fields["dirs"]); dirs != "[agent-crashed]" {
		t.Errorf("dirs %s, want [agent-crashed]", dirs)
	}
	if reason := fmt.Sprint(fields["reason"]); reason == "" || strings.Contains(reason, "name-of-the-commands") {
		t.Errorf("reason %q: want the system's reason alone", reason)
	}
}

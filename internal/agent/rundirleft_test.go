package agent_test

import (
	"fmt"
	"os/exec"
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

//go:build linux

package hostile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/waitcond"
)

// TestRunFilesOnlyRegularFiles: a command that leaves a named pipe where its response file
// goes hung its run's closing for good (the run stayed IN_PROGRESS in Port); two such runs
// held both slots so the next run waited, and two SIGTERMs did not stop the agent. A link
// there made the agent send Port the file it names. Each must fail its own run, with a label
// that says so, within the closing budget; the next run must run; and one SIGTERM must stop
// the agent while such a run is being closed.
func TestRunFilesOnlyRegularFiles(t *testing.T) {
	e := newEnv(t)
	agentOnly := e.file(t, "agent-only.json", `{"readable by":"the agent"}`)
	done := filepath.Join(e.dir, "done")
	if err := os.Mkdir(done, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(done, 0o777); err != nil {
		t.Fatal(err)
	}
	// Each command leaves its file, then says so (the test waits on that, not on time).
	fifo := e.file(t, "fifo.sh", "#!/bin/sh\nmkfifo \"$PORT_RESPONSE_FILE\" && touch \"$1/$PORT_RUN_ID\"\n")
	link := e.file(t, "link.sh", "#!/bin/sh\nln -s \"$2\" \"$PORT_RESPONSE_FILE\" && touch \"$1/$PORT_RUN_ID\"\n")
	a := e.startAgent(t, e.config(t, fmt.Sprintf(`executor: {maxConcurrent: 2, shutdownTimeout: 5s}
actions:
  fifo: {command: [%q, %q]}
  link: {command: [%q, %q, %q]}
  ok: {command: ["true"]}
`, fifo, done, link, done, agentOnly)))

	produced := time.Now()
	for _, r := range [][2]string{{"r_fifo_1", "fifo"}, {"r_fifo_2", "fifo"}, {"r_link", "link"}, {"r_ok", "ok"}} {
		e.produceRun(t, r[0], r[1])
	}
	for id, label := range map[string]string{
		"r_fifo_1": "exit code 0; $PORT_RESPONSE_FILE is a named pipe, not a regular file",
		"r_fifo_2": "exit code 0; $PORT_RESPONSE_FILE is a named pipe, not a regular file",
		"r_link":   "exit code 0; $PORT_RESPONSE_FILE is a symbolic link, not a regular file",
	} {
		run := e.waitClosed(t, a, id, config.ClosingBudget)
		if run.Status != "FAILURE" || run.StatusLabel != label {
			t.Errorf("%s: %s %q, want FAILURE %q", id, run.Status, run.StatusLabel, label)
		}
		if run.Response != nil {
			t.Errorf("%s: Port got a response: %v", id, run.Response)
		}
	}
	if run := e.waitClosed(t, a, "r_ok", config.ClosingBudget); run.Status != "SUCCESS" {
		t.Errorf("the run after them: %+v", run)
	}
	t.Logf("four runs closed %s after they were produced", time.Since(produced).Round(time.Millisecond))

	// One more named pipe, and one SIGTERM once its command has left it.
	e.produceRun(t, "r_fifo_3", "fifo")
	waitcond.For(t, "r_fifo_3's command left its pipe", 60*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(done, "r_fifo_3"))
		return err == nil
	})
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	term := time.Now()
	// shutdownTimeout, then cancelled runs are closed (up to 30s) and a commit (up to 10s):
	// an agent that drains does it in seconds here; one that waits on a pipe never does.
	if !a.wait(45 * time.Second) {
		t.Fatalf("the agent did not exit within 45s of one SIGTERM")
	}
	t.Logf("the agent exited %s after SIGTERM: %v", time.Since(term).Round(time.Millisecond), a.state())
	if !a.state().Success() {
		t.Errorf("the agent exited %v, want 0", a.state())
	}
	run, _ := e.emu.Run("r_fifo_3")
	if run.Status != "FAILURE" || !strings.Contains(run.StatusLabel, "is a named pipe") {
		t.Errorf("r_fifo_3: %s %q, want FAILURE for its named pipe", run.Status, run.StatusLabel)
	}
}

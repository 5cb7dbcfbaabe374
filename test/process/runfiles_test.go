//go:build linux

package process_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/test/harness"
)

// TestRunFilesOnlyRegularFiles: a command that leaves a named pipe where its response file
// goes hung its run's closing for good (the run stayed IN_PROGRESS in Port); two such runs
// held both slots so the next run waited, and two SIGTERMs did not stop the agent. A link
// there made the agent send Port the file it names. Each must fail its own run, with a label
// that says so, within the closing budget; the next run must run; and one SIGTERM must stop
// the agent while such a run is being closed.
func TestRunFilesOnlyRegularFiles(t *testing.T) {
	broker := plaintextBroker(t)
	h := harness.New(t, 1, harness.WithBroker(broker))
	dir := sharedDir(t)
	done := writableDir(t, dir) // each command says there that it left its file
	agentOnly := filepath.Join(dir, "agent-only.json")
	if err := os.WriteFile(agentOnly, []byte(`{"readable by":"the agent"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := writeScript(t, dir, "fifo.sh", `mkfifo "$PORT_RESPONSE_FILE" && touch "$1/$PORT_RUN_ID"`)
	link := writeScript(t, dir, "link.sh", `ln -s "$2" "$PORT_RESPONSE_FILE" && touch "$1/$PORT_RUN_ID"`)
	cfg := h.ConfigFile(t, dir, fmt.Sprintf(`executor: {maxConcurrent: 2, shutdownTimeout: 5s}
logs: {flushInterval: 100ms}
actions:
  fifo: {command: [%q, %q], sandbox: {write: [%[2]q]}}
  link: {command: [%q, %q, %q], sandbox: {write: [%[4]q]}}
  ok: {command: ["true"]}
`, fifo, done, link, done, agentOnly))
	ps := harness.NewProcesses(t)
	a := ps.Agent("agent", harness.Binary(t), cfg, harness.ProcessOptions{Home: dir, AsNobody: true})

	produced := time.Now()
	for _, r := range [][2]string{{"r_fifo_1", "fifo"}, {"r_fifo_2", "fifo"}, {"r_link", "link"}, {"r_ok", "ok"}} {
		h.NewRun(t, r[0], r[1])
	}
	for id, label := range map[string]string{
		"r_fifo_1": "exit code 0; $PORT_RESPONSE_FILE is a named pipe, not a regular file",
		"r_fifo_2": "exit code 0; $PORT_RESPONSE_FILE is a named pipe, not a regular file",
		"r_link":   "exit code 0; $PORT_RESPONSE_FILE is a symbolic link, not a regular file",
	} {
		run := waitClosed(t, ps, h, id)
		if run.Status != "FAILURE" || run.StatusLabel != label {
			t.Errorf("%s: %s %q, want FAILURE %q", id, run.Status, run.StatusLabel, label)
		}
		if run.Response != nil {
			t.Errorf("%s: Port got a response: %v", id, run.Response)
		}
	}
	if run := waitClosed(t, ps, h, "r_ok"); run.Status != "SUCCESS" {
		t.Errorf("the run after them: %+v", run)
	}
	t.Logf("four runs closed %s after they were produced", time.Since(produced).Round(time.Millisecond))

	// One more named pipe, and one SIGTERM once its command has left it.
	h.NewRun(t, "r_fifo_3", "fifo")
	waitcond.For(t, "r_fifo_3's command left its pipe", 60*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(done, "r_fifo_3"))
		return err == nil
	})
	a.Signal(t, syscall.SIGTERM)
	term := time.Now()
	// shutdownTimeout, then cancelled runs are closed (up to 30s) and a commit (up to 10s):
	// an agent that drains does it in seconds here; one that waits on a pipe never does.
	if !a.Wait(45 * time.Second) {
		t.Fatalf("the agent did not exit within 45s of one SIGTERM")
	}
	st, _ := a.State()
	t.Logf("the agent exited %s after SIGTERM: %v", time.Since(term).Round(time.Millisecond), st)
	a.WantExit0(t)
	run, _ := h.Emu.Run("r_fifo_3")
	if run.Status != "FAILURE" || !strings.Contains(run.StatusLabel, "is a named pipe") {
		t.Errorf("r_fifo_3: %s %q, want FAILURE for its named pipe", run.Status, run.StatusLabel)
	}
}

// writeScript writes an executable /bin/sh script of body as dir/name, where every uid can
// read it (harness.Script's directory is the test's own: the agent here runs as another).
func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

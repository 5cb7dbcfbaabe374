package agent_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/test/harness"
)

// A command that opens thousands of connections to $PORT_API_URL and holds them (no token
// needed: the proxy accepts before it authenticates) costs the agent at most the proxy's
// connection bound in open files and goroutines, not one of each per connection: the agent's
// open files are what its Kafka, Port and pipe work needs too (README "Scripts calling Port").
func TestAConnectionFloodDoesNotExhaustTheAgent(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("not checked: bash (its /dev/tcp) is not installed")
	}
	const conns, bound = 3000, 1024 + 100 // the proxy's bound, and the agent's own slack
	h := harness.New(t, 1)
	dir := t.TempDir()
	held, release := filepath.Join(dir, "held"), filepath.Join(dir, "release")
	script := filepath.Join(dir, "flood.sh")
	if err := os.WriteFile(script, []byte(fmt.Sprintf(`#!%s
hp=${PORT_API_URL#http://}; hp=${hp%%%%/*}
for i in $(seq %d); do exec {fd}<>"/dev/tcp/${hp%%:*}/${hp##*:}" || exit 9; done
: > %q
while [ ! -e %q ]; do sleep 0.05; done
`, bash, conns, held, release)), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := h.Config(t, harness.Actions(fmt.Sprintf("  flood:\n    command: [%q]\n", script)))
	h.Emu.RegisterRun("r_flood", "flood")
	h.Start(t, cfg).WaitReady(t)
	files, goroutines := openFiles(t), runtime.NumGoroutine()
	h.ProduceRun(t, "r_flood", "flood")
	t.Cleanup(func() { _ = os.WriteFile(release, nil, 0o600) })
	waitcond.For(t, "the command's connections open", 60*time.Second, func() bool {
		_, err := os.Stat(held)
		return err == nil
	})
	// The agent accepts them at its pace: watch for a while that it never holds them all.
	most, mostG := 0, 0
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		most, mostG = max(most, openFiles(t)-files), max(mostG, runtime.NumGoroutine()-goroutines)
		if most > bound || mostG > 2*bound {
			break
		}
	}
	t.Logf("the command holds %d connections: the agent's open files +%d, goroutines +%d", conns, most, mostG)
	if most > bound || mostG > 2*bound {
		t.Fatalf("the agent's open files grew by %d and its goroutines by %d for %d connections, want at most %d files", most, mostG, conns, bound)
	}
	if err := os.WriteFile(release, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if run := h.WaitClosed(t, "r_flood"); run.Status != "SUCCESS" {
		t.Fatalf("run %s %q, want SUCCESS", run.Status, run.StatusLabel)
	}
}

// openFiles is how many files this process (the agent) has open.
func openFiles(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

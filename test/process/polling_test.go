//go:build linux

package process_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/test/harness"
)

// pollScript records each execution's start in $1 and, after its sleep, its end in $2: a
// run may start at most once (nothing runs it again), and ends at most once.
const pollScript = `#!/bin/sh
echo "$PORT_RUN_ID" >> "$1"
sleep "$(awk -v ms="${SLEEP_MS:-0}" 'BEGIN { printf "%.3f", ms / 1000 }')"
echo "$PORT_RUN_ID" >> "$2"
`

// Three built agents poll Port's claim API; one is SIGKILLed while it runs commands. Nothing
// is lost: the runs it had claimed but not acknowledged come back to the others once their
// claims expire, and those it was running are closed as interrupted once their leases end.
// No run executes twice, at once or at all, and each is closed exactly once.
func TestPollingReplicaKilled(t *testing.T) {
	t.Parallel() // mostly a wait for the killed replica's leases to end (package documentation)
	if testing.Short() {
		t.Skip("waits for the killed replica's leases to end: skipped with -short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("needs Linux (/proc, Pdeathsig)")
	}
	const runs = 150
	h := harness.New(t, 1, harness.WithPort(func(o *emulator.Options) { o.Delivery = emulator.DeliveryPolling }))
	if h.Broker.Kind != harness.KindKfake {
		t.Skip("no Kafka involved: it runs once, in the in-process suite")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out") // where the commands record, in their sandbox (sandbox.write)
	script, starts, ends := filepath.Join(dir, "poll.sh"), filepath.Join(out, "starts"), filepath.Join(out, "ends")
	if err := os.Mkdir(out, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(script, []byte(pollScript), 0o755); err != nil {
		t.Fatal(err)
	}
	cfgPath := h.ConfigFile(t, dir, fmt.Sprintf(`
transport: polling
kafka: null
polling: {interval: 1s, visibilityTimeout: 5s, sweepInterval: 2s}
port: {requestsPerSecond: 500}
executor: {maxConcurrent: 8, shutdownTimeout: 3s}
actions:
  polled:
    command: [%q, %q, %q]
    env: {SLEEP_MS: .properties.sleepMs}
    timeout: 5s
    sandbox: {write: [%q]}
`, script, starts, ends, out))

	var ids []string
	for range runs {
		r, err := h.Emu.CreateRun(context.Background(), "polled", emulator.CreateRunRequest{
			Properties: map[string]any{"sleepMs": rand.IntN(500)}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	ps := harness.NewProcesses(t)
	bin := harness.Binary(t)
	start := func(name string) *harness.Process { return ps.Agent(name, bin, cfgPath, harness.ProcessOptions{}) }
	a, b, c := start("A"), start("B"), start("C")

	var aRunning int
	ps.WaitFor("a quarter of the runs closed and A running commands", 2*time.Minute, func() bool {
		if h.ClosedCount(ids) < runs/4 {
			return false
		}
		aRunning = commandsOf(a.Pid(), script)
		return aRunning > 0
	})
	killed := time.Now()
	t.Logf("%d/%d runs closed; SIGKILL A while it runs %d commands", h.ClosedCount(ids), runs, aRunning)
	a.Signal(t, syscall.SIGKILL)
	if !a.Wait(10 * time.Second) {
		t.Fatal("A did not die within 10s of SIGKILL")
	}
	// A's runs' leases: 5s timeout + 10s kill grace + 60s closing budget + 10s skew.
	ps.WaitFor("every run closed in Port", 3*time.Minute, func() bool { return h.ClosedCount(ids) == runs })
	t.Logf("every run closed %s after the kill", since(killed))
	for _, p := range []*harness.Process{b, c} {
		p.Signal(t, syscall.SIGTERM)
		if !p.Wait(15 * time.Second) {
			t.Errorf("%s still running 15s after SIGTERM", p.Name)
		}
		p.WantExit0(t)
	}

	started, err := readIDs(starts)
	if err != nil {
		t.Fatal(err)
	}
	var twice []string
	for id, n := range started {
		if n > 1 {
			twice = append(twice, fmt.Sprintf("%s x%d", id, n))
		}
	}
	if len(twice) > 0 {
		t.Errorf("%d run(s) started more than once: %s", len(twice), sample(twice))
	}
	success := map[string]bool{}
	interrupted, raced := 0, 0
	for _, id := range ids {
		r, _ := h.Emu.Run(id)
		if r.Terminations != 1 {
			t.Errorf("run %s: %d terminations (%s %q), want 1", id, r.Terminations, r.Status, r.StatusLabel)
		}
		switch {
		case r.Status == statusSuccess:
			success[id] = true
		case r.Status == statusFailure && strings.HasPrefix(r.StatusLabel, "interrupted:"):
		default:
			t.Errorf("run %s ended %s %q, want SUCCESS or FAILURE interrupted:", id, r.Status, r.StatusLabel)
		}
		// Two sweeps may close a run at the same moment: Port refuses the second (README
		// "With transport: polling"). Nothing else may be refused.
		if r.RejectedTerminations > 0 {
			raced++
			if !strings.HasPrefix(r.StatusLabel, "interrupted:") {
				t.Errorf("run %s: %d refused terminations (%s %q)", id, r.RejectedTerminations, r.Status, r.StatusLabel)
			}
		}
		if strings.HasPrefix(r.StatusLabel, "interrupted:") {
			interrupted++
			// Only a run A acknowledged (and leased) can be A's to close: one it had
			// claimed and not acknowledged came back to the others.
			if !r.Acked || !strings.HasPrefix(r.ExternalRunID, "port-runner lease ") {
				t.Errorf("run %s closed as interrupted: acknowledged %v, externalRunId %q", id, r.Acked, r.ExternalRunID)
			}
		}
	}
	t.Logf("outcomes: %d SUCCESS, %d FAILURE interrupted (%d closed by two sweeps at once)", len(success), interrupted, raced)
	checkIDsFile(t, ends, ids, success)
	if interrupted == 0 {
		t.Errorf("no run closed as interrupted: the kill did not land while A ran commands")
	}
}

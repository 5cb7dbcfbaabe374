//go:build linux

package process_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/test/harness"
)

// TestStolenTokenRefusedThroughTheShim proves README "Runs and each other" as shipped: the
// built agent (unprivileged uid, non-dumpable, commands under port-runner-shim, the sandbox
// off: with it the thief cannot read the other's environ at all) runs two commands at once;
// the second reads the first's PORT_API_TOKEN and PORT_API_URL from
// /proc/<pid>/environ and tries to write to the first run's log: 401. The first run's own
// requests, made by a child of its shell under the shim, pass.
func TestStolenTokenRefusedThroughTheShim(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Linux: /proc")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	broker := plaintextBroker(t)
	secret := "port-secret-" + randomHex(t)
	dir := sharedDir(t)
	out := writableDir(t, dir)
	fifo := filepath.Join(out, "release")
	if err := syscall.Mkfifo(fifo, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(fifo, 0o666); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(dir, "victim.sh")
	thief := filepath.Join(dir, "thief.sh")
	for path, body := range map[string]string{
		victim: `#!/bin/sh
echo "own: $(curl -q -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $PORT_API_TOKEN" -H 'Content-Type: application/json' "$PORT_API_URL/actions/runs/$PORT_RUN_ID/logs" -d '{"message":"A wrote this itself"}')"
touch "$1/started"
read -r _ < "$1/release"
`,
		thief: "#!/bin/sh\n" + harness.StealToken("r_victim") + `echo "found token: ${#tok} chars"
echo "stolen: $(curl -q -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' "$url/actions/runs/r_victim/logs" -d '{"message":"B WROTE THIS"}')"
echo go > "$1/release"
`,
	} {
		if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}

	h := harness.New(t, 1, harness.WithBroker(broker), harness.WithPort(func(o *emulator.Options) { o.ClientSecret = secret }))
	cfg := h.ConfigFile(t, dir, fmt.Sprintf(`
port: {clientSecret: "${PORT_CLIENT_SECRET}"}
logs: {flushInterval: 100ms}
actions:
  victim: {command: [%q, %q], sandbox: off}
  thief: {command: [%q, %q], sandbox: off}
`, victim, out, thief, out))
	agent := harness.NewProcesses(t).Agent("agent", harness.Binary(t), cfg, harness.ProcessOptions{
		Home: dir, AsNobody: true, Env: []string{"PORT_CLIENT_SECRET=" + secret}})
	h.NewRun(t, "r_victim", "victim")
	waitcond.For(t, "run A to get going", 60*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(out, "started"))
		return err == nil
	})
	h.NewRun(t, "r_thief", "thief")

	lines := map[string]string{}
	for _, id := range []string{"r_thief", "r_victim"} {
		run := h.WaitClosed(t, id)
		if run.Status != "SUCCESS" {
			t.Fatalf("run %s: %+v\nagent log:\n%s", id, run, agent.Log())
		}
		var b strings.Builder
		for _, e := range run.Logs {
			b.WriteString(e.Message + "\n")
		}
		lines[id] = b.String()
	}
	for _, want := range []string{"found token: 64 chars", "stolen: 401"} {
		if !strings.Contains(lines["r_thief"], want) {
			t.Errorf("run B's log lacks %q:\n%s", want, lines["r_thief"])
		}
	}
	if !strings.Contains(lines["r_victim"], "own: 200") || !strings.Contains(lines["r_victim"], "A wrote this itself") || strings.Contains(lines["r_victim"], "B WROTE THIS") {
		t.Errorf("run A's log:\n%s", lines["r_victim"])
	}
}

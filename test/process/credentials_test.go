//go:build linux

package process_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/test/harness"
)

// snoopScript is a hostile command: it reads every /proc/*/environ and /proc/*/cmdline it
// can into $1/dump (the list of readable files in $1/readable), and records its shim's pid,
// its shim's name and the agent's pid in $1/ancestry. The test reads these files itself, so
// the agent's masking of the run's log cannot hide a finding.
const snoopScript = `#!/bin/sh
out=$1
for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do
  if cat "$f" >/dev/null 2>&1; then
    echo "$f" >> "$out/readable"
    cat "$f" >> "$out/dump"
    echo >> "$out/dump"
  fi
done
agent=$(awk '/^PPid:/ { print $2 }' /proc/$PPID/status)
echo "$PPID $(cat /proc/$PPID/comm) $agent" > "$out/ancestry"
`

// TestCommandFindsNoCredential proves the agent's own credentials stay its own (README
// "Isolation") even with the sandbox off: the built agent runs under an unprivileged uid
// with its credentials in its environment, and a command of the same uid that reads every
// /proc/*/environ and /proc/*/cmdline it can finds neither the Port client secret nor the
// Kafka password.
func TestCommandFindsNoCredential(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Linux: /proc and PR_SET_DUMPABLE")
	}
	broker := plaintextBroker(t)
	portSecret, kafkaPass := "port-secret-"+randomHex(t), "kafka-pass-"+randomHex(t)
	dir, out, script := snoopIn(t)
	h := harness.New(t, 1, harness.WithBroker(broker), harness.WithPort(func(o *emulator.Options) { o.ClientSecret = portSecret }))
	cfg := h.ConfigFile(t, dir, fmt.Sprintf(`
port: {clientSecret: "${PORT_CLIENT_SECRET}"}
kafka: {sasl: {password: "${KAFKA_PASSWORD}"}}
logs: {flushInterval: 100ms}
actions:
  snoop: {command: [%q, %q], sandbox: off}
`, script, out))
	agent := harness.NewProcesses(t).Agent("agent", harness.Binary(t), cfg, harness.ProcessOptions{
		Home: dir, AsNobody: true, Env: []string{"PORT_CLIENT_SECRET=" + portSecret, "KAFKA_PASSWORD=" + kafkaPass}})

	id := "r_snoop_" + randomHex(t)[:8]
	h.NewRun(t, id, "snoop")
	if run := h.WaitClosed(t, id); run.Status != "SUCCESS" {
		t.Fatalf("run %s: %+v\nagent log:\n%s", id, run, agent.Log())
	}

	dump := readFile(t, filepath.Join(out, "dump"))
	readable := strings.Fields(readFile(t, filepath.Join(out, "readable")))
	ancestry := strings.Fields(readFile(t, filepath.Join(out, "ancestry")))
	if !strings.Contains(dump, "PORT_RUN_ID="+id) {
		t.Fatalf("the command could not read even its own environment (%d files read): the test proves nothing", len(readable))
	}
	var environs []string
	for _, f := range readable {
		if strings.HasSuffix(f, "/environ") {
			environs = append(environs, f)
		}
	}
	for name, secret := range map[string]string{"the Port client secret": portSecret, "the Kafka password": kafkaPass} {
		if strings.Contains(dump, secret) {
			t.Errorf("the command found %s in /proc (environ files it read: %q)", name, environs)
		}
	}
	if len(ancestry) != 3 || ancestry[1] != "port-runner-shi" { // comm is cut at 15 bytes
		t.Fatalf("ancestry %q: want the shim's pid, port-runner-shim, the agent's pid", ancestry)
	}
	for _, pid := range []string{ancestry[0], ancestry[2]} {
		for _, f := range readable {
			if f == "/proc/"+pid+"/environ" {
				t.Errorf("the command read %s: the shim and the agent must not be dumpable", f)
			}
		}
	}
	if logs := agent.Log(); strings.Contains(logs, portSecret) || strings.Contains(logs, kafkaPass) {
		t.Errorf("a credential is in the agent's own log")
	}
}

// snoopIn writes snoopScript into a sharedDir, with the writableDir it reports to.
func snoopIn(t *testing.T) (dir, out, script string) {
	t.Helper()
	dir = sharedDir(t)
	out = writableDir(t, dir)
	script = filepath.Join(dir, "snoop.sh")
	if err := os.WriteFile(script, []byte(snoopScript), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, out, script
}

// sharedDir is a temporary directory every uid can enter: the agent runs as another one.
func sharedDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "port-runner-isolation-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// writableDir is dir/out, which the agent's uid may write to (past the umask).
func writableDir(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(out, 0o777); err != nil {
		t.Fatal(err)
	}
	return out
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

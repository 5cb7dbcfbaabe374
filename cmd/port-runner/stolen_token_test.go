package main

import (
	"context"
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
	"github.com/port-runner/port-runner/internal/runmsg"
	"github.com/port-runner/port-runner/test/kafkatest"
)

// TestStolenTokenRefusedThroughTheShim proves README "Runs and each other" as shipped: the
// built agent (unprivileged uid, non-dumpable, commands under port-runner-shim, the sandbox
// off: with it the thief cannot read the other's environ at all) runs two commands at once; the second reads the first's PORT_API_TOKEN and PORT_API_URL from
// /proc/<pid>/environ and tries to write to the first run's log: 401. The first run's own
// requests, made by a child of its shell under the shim, pass.
func TestStolenTokenRefusedThroughTheShim(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Linux: /proc")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	cluster := kafkatest.New(t)
	if len(cluster.Opts) > 0 {
		t.Skip("the agent here is configured for a PLAINTEXT broker")
	}
	secret := "port-secret-" + randomHex(t)
	dir := sharedDir(t)
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(out, 0o777); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(out, "release")
	if err := syscall.Mkfifo(fifo, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(fifo, 0o666); err != nil {
		t.Fatal(err)
	}
	bin := buildInto(t, dir, "port-runner", "./")
	buildInto(t, dir, "port-runner-shim", "../port-runner-shim")
	victim := filepath.Join(dir, "victim.sh")
	thief := filepath.Join(dir, "thief.sh")
	for path, body := range map[string]string{
		victim: `#!/bin/sh
echo "own: $(curl -q -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $PORT_API_TOKEN" -H 'Content-Type: application/json' "$PORT_API_URL/actions/runs/$PORT_RUN_ID/logs" -d '{"message":"A wrote this itself"}')"
touch "$1/started"
read -r _ < "$1/release"
`,
		thief: `#!/bin/sh
for f in /proc/[0-9]*/environ; do
  env=$( (tr '\0' '\n' < "$f") 2>/dev/null) || continue
  case "$env" in *PORT_RUN_ID=r_victim*) ;; *) continue ;; esac
  tok=$(printf '%s\n' "$env" | sed -n 's/^PORT_API_TOKEN=//p')
  url=$(printf '%s\n' "$env" | sed -n 's/^PORT_API_URL=//p')
  [ -n "$tok" ] && break
done
echo "found token: ${#tok} chars"
echo "stolen: $(curl -q -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' "$url/actions/runs/r_victim/logs" -d '{"message":"B WROTE THIS"}')"
echo go > "$1/release"
`,
	} {
		if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}

	topic, group := cluster.Topic(t, 1), cluster.Group(t)
	emu := emulator.New(emulator.Options{ClientID: "iso-client", ClientSecret: secret, OrgID: "org_iso", Topic: topic})
	base := serveEmulator(t, emu)
	cfg := filepath.Join(dir, "config.yaml")
	yml := fmt.Sprintf(`port: {baseURL: %q, clientID: iso-client, clientSecret: "${PORT_CLIENT_SECRET}", orgID: org_iso}
kafka: {brokers: [%q], topic: %q, group: %q, startOffset: earliest}
logs: {flushInterval: 100ms}
metrics: {addr: "127.0.0.1:0"}
actions:
  victim: {command: [%q, %q], sandbox: off}
  thief: {command: [%q, %q], sandbox: off}
`, base, strings.Join(cluster.Brokers, ","), topic, group, victim, out, thief, out)
	if err := os.WriteFile(cfg, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	agentLog := startAgentAs(t, bin, cfg, dir, "PORT_CLIENT_SECRET="+secret)
	produce := func(id, action string) {
		emu.RegisterRun(id, action)
		msg, err := runmsg.Sign(secret, time.Now().Unix(), fmt.Appendf(nil, `{"action":%q,"context":{"runId":%q},"payload":{"properties":{}}}`, action, id))
		if err != nil {
			t.Fatal(err)
		}
		cluster.Produce(t, topic, []byte(id), msg)
	}
	produce("r_victim", "victim")
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(out, "started")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			logs, _ := os.ReadFile(agentLog)
			t.Fatalf("run A never got going; agent log:\n%s", logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	produce("r_thief", "thief")

	wctx, wcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer wcancel()
	lines := map[string]string{}
	for _, id := range []string{"r_thief", "r_victim"} {
		run, err := emu.WaitRun(wctx, id, func(r emulator.RunState) bool { return r.Status != "IN_PROGRESS" })
		if err != nil || run.Status != "SUCCESS" {
			logs, _ := os.ReadFile(agentLog)
			t.Fatalf("run %s: %+v, %v\nagent log:\n%s", id, run, err, logs)
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

// serveEmulator serves emu on loopback until the test ends and returns its base URL.
func serveEmulator(t *testing.T, emu *emulator.Emulator) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	base, wait, err := emu.Start(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = wait() })
	return base
}

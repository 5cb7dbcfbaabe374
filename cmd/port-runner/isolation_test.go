package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/runmsg"
	"github.com/port-runner/port-runner/internal/shim"
	"github.com/port-runner/port-runner/test/kafkatest"
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
	cluster := kafkatest.New(t)
	if len(cluster.Opts) > 0 {
		t.Skip("the agent here is configured for a PLAINTEXT broker")
	}
	portSecret, kafkaPass := "port-secret-"+randomHex(t), "kafka-pass-"+randomHex(t)

	dir := sharedDir(t)
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(out, 0o777); err != nil { // past the umask: the agent's uid writes here
		t.Fatal(err)
	}
	bin := buildInto(t, dir, "port-runner", "./")
	buildInto(t, dir, "port-runner-shim", "../port-runner-shim")
	script := filepath.Join(dir, "snoop.sh")
	if err := os.WriteFile(script, []byte(snoopScript), 0o755); err != nil {
		t.Fatal(err)
	}

	topic, group := cluster.Topic(t, 1), cluster.Group(t)
	emu := emulator.New(emulator.Options{ClientID: "iso-client", ClientSecret: portSecret, OrgID: "org_iso", Topic: topic})
	ctx, cancel := context.WithCancel(context.Background())
	base, wait, err := emu.Start(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = wait() })

	cfg := filepath.Join(dir, "config.yaml")
	yml := fmt.Sprintf(`port: {baseURL: %q, clientID: iso-client, clientSecret: "${PORT_CLIENT_SECRET}", orgID: org_iso}
kafka: {brokers: [%q], topic: %q, group: %q, startOffset: earliest, sasl: {password: "${KAFKA_PASSWORD}"}}
logs: {flushInterval: 100ms}
metrics: {addr: "127.0.0.1:0"}
actions:
  snoop: {command: [%q, %q], sandbox: off}
`, base, strings.Join(cluster.Brokers, ","), topic, group, script, out)
	if err := os.WriteFile(cfg, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	agentLog := startAgentAs(t, bin, cfg, dir, "PORT_CLIENT_SECRET="+portSecret, "KAFKA_PASSWORD="+kafkaPass)

	id := "r_snoop_" + randomHex(t)[:8]
	emu.RegisterRun(id, "snoop")
	msg, err := runmsg.Sign(portSecret, time.Now().Unix(), fmt.Appendf(nil, `{"action":"snoop","context":{"runId":%q},"payload":{"properties":{}}}`, id))
	if err != nil {
		t.Fatal(err)
	}
	cluster.Produce(t, topic, []byte(id), msg)
	wctx, wcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer wcancel()
	run, err := emu.WaitRun(wctx, id, func(r emulator.RunState) bool { return r.Status != "IN_PROGRESS" })
	if err != nil || run.Status != "SUCCESS" {
		logs, _ := os.ReadFile(agentLog)
		t.Fatalf("run %s: %+v, %v\nagent log:\n%s", id, run, err, logs)
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
	if logs := readFile(t, agentLog); strings.Contains(logs, portSecret) || strings.Contains(logs, kafkaPass) {
		t.Errorf("a credential is in the agent's own log")
	}
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

func buildInto(t *testing.T, dir, name, pkg string) string {
	t.Helper()
	bin := filepath.Join(dir, name)
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// startAgentAs starts `bin run --config cfg` with only env (plus PATH and HOME), as uid
// 65534 when the test runs as root, and stops it at cleanup. It returns its log's path.
func startAgentAs(t *testing.T, bin, cfg, home string, env ...string) string {
	t.Helper()
	logPath := filepath.Join(home, "agent.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "run", "--config", cfg)
	cmd.Dir = home
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + home}, env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if os.Getuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return logPath
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

// TestScrubEnv: after the config is read, no variable of the agent holds a credential.
func TestScrubEnv(t *testing.T) {
	t.Setenv("PORT_CLIENT_SECRET", "s3cret")
	t.Setenv("SOME_ALIAS", "s3cret")
	t.Setenv("KAFKA_PASSWORD", "kp")
	t.Setenv("PORT_CLIENT_ID", "not-a-secret")
	scrubEnv([]string{"s3cret", "kp"})
	for _, kv := range os.Environ() {
		if strings.Contains(kv, "s3cret") || strings.HasSuffix(kv, "=kp") {
			t.Errorf("%s still in the environment", kv)
		}
	}
	if os.Getenv("PORT_CLIENT_ID") != "not-a-secret" {
		t.Error("a variable that holds no credential was removed")
	}
}

// TestFindShimFallsBackWithOneWarning: without port-runner-shim beside the binary (the test
// binary here), the binary itself is the shim, and the agent says so once.
func TestFindShimFallsBackWithOneWarning(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the exec shim is Linux-only")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(exe), shim.Binary)); err == nil {
		t.Skip("a port-runner-shim is beside the test binary")
	}
	core, logs := observer.New(zap.InfoLevel)
	got := findShim(zap.New(core))
	if strings.Join(got, " ") != exe+" "+shim.Command {
		t.Errorf("findShim = %q, want the binary itself under %s", got, shim.Command)
	}
	if n := logs.FilterLevelExact(zap.WarnLevel).Len(); n != 1 || logs.Len() != 1 {
		t.Errorf("%d warnings (%d lines), want exactly one", n, logs.Len())
	}
}

//go:build linux

package process_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/port-runner/port-runner/test/harness"
)

// `port-runner try` runs the command "as under run" (README "Trying an action"), so a
// command of its uid with the sandbox off reads neither its memory nor its initial
// environment, which holds the shell's credentials (the config's ${PORT_CLIENT_SECRET}, and
// whatever else the user exported) just as the agent's does.
func TestTryCommandFindsNoCredential(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root, to run try as another uid than the test's")
	}
	portSecret, shellSecret := "port-secret-"+randomHex(t), "shell-secret-"+randomHex(t)
	dir, out, script := snoopIn(t)
	cfg := filepath.Join(dir, "config.yaml")
	yml := fmt.Sprintf("port: {clientSecret: \"${PORT_CLIENT_SECRET}\"}\nactions:\n  snoop: {command: [%q, %q], sandbox: off}\n", script, out)
	if err := os.WriteFile(cfg, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(harness.Binary(t), "try", "snoop", "--config", cfg)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "PORT_CLIENT_SECRET=" + portSecret, "SOME_SHELL_SECRET=" + shellSecret}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}, Pdeathsig: syscall.SIGKILL}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("try: %v\n%s", err, b)
	}
	dump := readFile(t, filepath.Join(out, "dump"))
	ancestry := strings.Fields(readFile(t, filepath.Join(out, "ancestry")))
	if !strings.Contains(dump, "PORT_RUN_ID=") || len(ancestry) != 3 || ancestry[1] != "port-runner-shi" {
		t.Fatalf("the command read not even its own environment, or not under the shim (ancestry %q): the test proves nothing", ancestry)
	}
	for name, secret := range map[string]string{"the Port client secret": portSecret, "the shell's secret": shellSecret} {
		if strings.Contains(dump, secret) {
			t.Errorf("the command found %s in /proc", name)
		}
	}
	for _, f := range strings.Fields(readFile(t, filepath.Join(out, "readable"))) {
		if f == "/proc/"+ancestry[2]+"/environ" {
			t.Errorf("the command read %s, try's: try must not be dumpable", f)
		}
	}
}

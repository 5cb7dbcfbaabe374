package harness_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/port-runner/port-runner/test/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

// The overlay changes what it names and keeps the rest of the base: a mapping merges into
// the base's, a value replaces it, null removes it.
func TestConfigOverlay(t *testing.T) {
	h := harness.New(t, 1)
	cfg := h.Config(t, `
executor: {maxConcurrent: 8}
kafka: {brokers: null, group: null}
actions:
  act: {command: ["true"]}
`)
	if cfg.Executor.MaxConcurrent != 8 || cfg.Executor.ShutdownTimeout.D().String() != "10s" {
		t.Errorf("executor %+v: want maxConcurrent from the overlay, shutdownTimeout from the base", cfg.Executor)
	}
	if cfg.Kafka.Topic != h.Topic || cfg.Kafka.Group != "" || !cfg.Kafka.FromPort() {
		t.Errorf("kafka %+v: want the Env's topic, and the brokers and group left to Port", cfg.Kafka)
	}
	if cfg.Port.BaseURL != h.PortURL() || cfg.Port.ClientSecret != harness.Secret || cfg.Metrics.Addr != "127.0.0.1:0" {
		t.Errorf("port %+v, metrics %+v: want the emulator's, on loopback", cfg.Port, cfg.Metrics)
	}
	if _, ok := cfg.Actions["act"]; !ok || len(cfg.Actions) != 1 {
		t.Errorf("actions %v, want the overlay's", cfg.ActionNames())
	}
}

// Binary builds the agent and its shim once per test binary.
func TestBinaryBuiltOnce(t *testing.T) {
	bin := harness.Binary(t)
	if again := harness.Binary(t); again != bin {
		t.Fatalf("Binary gave %s, then %s", bin, again)
	}
	st, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(bin), "port-runner-shim")); err != nil {
		t.Errorf("no shim beside the agent: %v", err)
	}
	if st.Mode().Perm()&0o005 != 0o005 {
		t.Errorf("%s is %s: other users cannot run it", bin, st.Mode())
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "port-runner") {
		t.Errorf("%s version: %v: %s", bin, err, out)
	}
}

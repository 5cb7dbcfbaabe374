package harness_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// scripts/kafka-local.sh starts the real broker NewBroker uses in CI, on fixed ports. A port
// this machine already uses (another broker, another checkout's run of the script) must be
// named in one clear line, with how to choose others, whether the script sees it before
// starting Kafka or Kafka meets it when it binds (two runs starting at once).
func TestKafkaLocalNamesAPortInUse(t *testing.T) {
	port := listenLocal(t).Addr().(*net.TCPAddr).Port // listening until the test ends
	env := kafkaLocalEnv(t, port, freePort(t), freePort(t))
	stderr, err := runKafkaLocal(t, env, "start")
	assertPortNamed(t, stderr, err, port)
	// Nothing fetched or started: the cache is as the test made it.
	if _, err := os.Stat(filepath.Join(envValue(env, "PORT_RUNNER_CACHE"), "kafka-0.0.0-test", "libs", "fetch")); err == nil {
		t.Error("the script fetched Kafka before checking its ports")
	}
}

func TestKafkaLocalNamesAPortTakenDuringStart(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not found (scripts/kafka-local.sh makes its TLS material with it)")
	}
	port := freePort(t)
	env := kafkaLocalEnv(t, port, freePort(t), freePort(t))
	// Kafka as it fails when another process binds the port between the script's check and
	// Kafka's own bind: its log line, and exit 1.
	env = append(env, "FAKE_KAFKA_BIND_FAILURE=127.0.0.1:"+fmt.Sprint(port))
	stderr, err := runKafkaLocal(t, env, "start")
	assertPortNamed(t, stderr, err, port)
	if _, err := os.Stat(filepath.Join(envValue(env, "KAFKA_LOCAL_DIR"), "kafka.pid")); err == nil {
		t.Error("kafka.pid left behind by a broker that did not start")
	}
}

func assertPortNamed(t *testing.T, stderr string, err error, port int) {
	t.Helper()
	if err == nil {
		t.Fatalf("start succeeded with 127.0.0.1:%d taken; stderr:\n%s", port, stderr)
	}
	want := fmt.Sprintf("kafka-local: ERROR: port 127.0.0.1:%d is already in use", port)
	if !strings.Contains(stderr, want) || !strings.Contains(stderr, "KAFKA_PORT") || !strings.Contains(stderr, "below 32768") {
		t.Errorf("stderr does not say %q and how to choose other ports (KAFKA_PORT..., below 32768):\n%s", want, stderr)
	}
}

// kafkaLocalEnv is the script's environment with the given ports, a state dir and a cache of
// the test's own, a Kafka "already fetched" and a java that plays Kafka's part: no JVM runs.
func kafkaLocalEnv(t *testing.T, port, saslPort, ctrlPort int) []string {
	t.Helper()
	cache, state, javaHome := t.TempDir(), t.TempDir(), t.TempDir()
	libs := filepath.Join(cache, "kafka-0.0.0-test", "libs")
	if err := os.MkdirAll(libs, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{filepath.Join(libs, "kafka_2.13-0.0.0-test.jar"), filepath.Join(cache, "kafka-0.0.0-test", ".complete")} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	java := `#!/bin/sh
for a; do
	case "$a" in
	random-uuid) echo 5L6g3nShT-eMCtK--X86sw; exit 0 ;;
	format) exit 0 ;;
	kafka.Kafka)
		echo "[2026-01-01 00:00:00,000] ERROR Fatal error during broker startup. Prepare to shutdown (kafka.server.BrokerServer)"
		echo "org.apache.kafka.common.KafkaException: Socket server failed to bind to ${FAKE_KAFKA_BIND_FAILURE:-nowhere}: Address already in use."
		exit 1 ;;
	esac
done
exit 2
`
	if err := os.MkdirAll(filepath.Join(javaHome, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(javaHome, "bin", "java"), []byte(java), 0o755); err != nil {
		t.Fatal(err)
	}
	return append(os.Environ(),
		"KAFKA_VERSION=0.0.0-test", "PORT_RUNNER_CACHE="+cache, "KAFKA_LOCAL_DIR="+state, "JAVA_HOME="+javaHome,
		"KAFKA_PORT="+fmt.Sprint(port), "KAFKA_SASL_PORT="+fmt.Sprint(saslPort), "KAFKA_CONTROLLER_PORT="+fmt.Sprint(ctrlPort),
		"KAFKA_START_TIMEOUT=60")
}

func runKafkaLocal(t *testing.T, env []string, arg string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "../../scripts/kafka-local.sh", arg)
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("scripts/kafka-local.sh %s did not finish: %v\n%s", arg, ctx.Err(), stderr.String())
	}
	return stderr.String(), err
}

// listenLocal listens on a port of the kernel's choice on loopback until the test ends.
func listenLocal(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// freePort is a port nothing listens on now (the kernel's choice, released).
func freePort(t *testing.T) int {
	l := listenLocal(t)
	l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func envValue(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}

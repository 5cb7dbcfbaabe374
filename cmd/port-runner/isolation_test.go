package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/port-runner/port-runner/executor"
	"github.com/port-runner/port-runner/internal/shim"
)

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
	got, kind := findShim(zap.New(core))
	if strings.Join(got, " ") != exe+" "+shim.Command || kind != executor.ShimAgentBinary {
		t.Errorf("findShim = %q (%s), want the binary itself under %s", got, kind, shim.Command)
	}
	if n := logs.FilterLevelExact(zap.WarnLevel).Len(); n != 1 || logs.Len() != 1 {
		t.Errorf("%d warnings (%d lines), want exactly one", n, logs.Len())
	}
}

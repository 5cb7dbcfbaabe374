package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// built is the one build of the agent per test binary: building takes seconds, and every
// test of a package runs the same binary. It is the kit's only package-level state; Main
// removes what it built.
var built struct {
	sync.Mutex
	main bool   // Main runs the tests: it removes dir at the end
	dir  string // every uid may enter it: tests run the agent as another user
	bin  string
	err  error
}

// Main runs a package's tests (m.Run) and then removes the binary Binary built. A package
// whose tests call Binary calls it from TestMain: os.Exit(harness.Main(m)).
func Main(m *testing.M) int {
	built.Lock()
	built.main = true
	built.Unlock()
	code := m.Run()
	built.Lock()
	defer built.Unlock()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	return code
}

// Binary is ./cmd/port-runner, with ./cmd/port-runner-shim beside it as shipped, built once
// per test binary into a directory every uid can enter.
func Binary(t testing.TB) string {
	t.Helper()
	built.Lock()
	defer built.Unlock()
	if !built.main {
		t.Fatal("harness: Binary needs the package's TestMain to call harness.Main")
	}
	if built.bin == "" && built.err == nil {
		built.dir, built.err = os.MkdirTemp("", "port-runner-harness-")
		if built.err == nil {
			built.err = os.Chmod(built.dir, 0o755)
		}
		if built.err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			built.bin, built.err = BuildAgent(ctx, built.dir)
			cancel()
		}
	}
	if built.err != nil {
		t.Fatalf("harness: building the agent: %v", built.err)
	}
	return built.bin
}

// BuildAgent builds ./cmd/port-runner into dir, and its exec shim ./cmd/port-runner-shim
// beside it (the agent finds its shim beside its own binary), and returns the agent's path.
func BuildAgent(ctx context.Context, dir string) (string, error) {
	if err := GoBuild(ctx, "./cmd/port-runner-shim", filepath.Join(dir, "port-runner-shim")); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "port-runner")
	return bin, GoBuild(ctx, "./cmd/port-runner", bin)
}

// GoBuild builds a package of the module (a path relative to its root) into out.
func GoBuild(ctx context.Context, pkg, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = ModuleRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// ModuleRoot is the port-runner module's directory: this file's, two levels up.
func ModuleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

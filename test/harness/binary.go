package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/shim/shimtest"
)

// built is the builds of the agent per test binary, one per shim kind: building takes
// seconds, and every test of a package runs the same binaries. It is the kit's only
// package-level state; Main removes what it built.
var built struct {
	sync.Mutex
	main bool   // Main runs the tests: it removes dir at the end
	dir  string // every uid may enter it: tests run the agent as another user
	bins map[string]build
}

type build struct {
	bin, shim string
	err       error
}

// Main runs a package's tests (m.Run) and then removes the binaries Binary built. A package
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

// Binary is ./cmd/port-runner with its exec shim beside it as the image ships it (the C
// one; the Go one where this machine cannot compile C, except in CI), built once per test
// binary into a directory every uid can enter.
func Binary(t testing.TB) string {
	t.Helper()
	bin, _ := BinaryWithShim(t, "")
	return bin
}

// BinaryWithShim is ./cmd/port-runner with the exec shim of kind beside it: "C", "Go", or
// "" for the shipped one (Binary). It returns the agent's path and the shim's kind; a test
// asking for the C shim is skipped where this machine cannot compile it (except in CI).
func BinaryWithShim(t testing.TB, kind string) (bin, shim string) {
	t.Helper()
	built.Lock()
	defer built.Unlock()
	if !built.main {
		t.Fatal("harness: Binary needs the package's TestMain to call harness.Main")
	}
	if built.dir == "" {
		dir, err := os.MkdirTemp("", "port-runner-harness-")
		if err == nil {
			err = os.Chmod(dir, 0o755)
		}
		if err != nil {
			t.Fatalf("harness: %v", err)
		}
		built.dir, built.bins = dir, map[string]build{}
	}
	b, ok := built.bins[kind]
	if !ok {
		dir := filepath.Join(built.dir, "shim-"+kind)
		if kind == "" {
			dir = filepath.Join(built.dir, "shipped")
		}
		if b.err = os.Mkdir(dir, 0o755); b.err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			b.bin, b.shim, b.err = BuildAgent(ctx, dir, kind)
			cancel()
		}
		built.bins[kind] = b
	}
	var noC *NoCShimError
	switch {
	case errors.As(b.err, &noC) && !shimtest.Required():
		t.Skipf("not checked with the C shim: %v", b.err)
	case b.err != nil:
		t.Fatalf("harness: building the agent: %v", b.err)
	}
	return b.bin, b.shim
}

// NoCShimError is BuildAgent's when no C compiler here builds the C shim.
type NoCShimError struct{ Err error }

func (e *NoCShimError) Error() string { return e.Err.Error() }
func (e *NoCShimError) Unwrap() error { return e.Err }

// BuildAgent builds ./cmd/port-runner into dir, and its exec shim port-runner-shim beside
// it (the agent finds its shim beside its own binary): of kind "C" (cmd/port-runner-shim/c,
// static, as the image builds it), "Go" (./cmd/port-runner-shim), or "" for the C one where
// this machine compiles it and else, outside CI, the Go one. It returns the agent's path
// and the shim's kind.
func BuildAgent(ctx context.Context, dir, kind string) (bin, shim string, err error) {
	out := filepath.Join(dir, "port-runner-shim")
	shim = kind
	switch kind {
	case "Go":
		err = GoBuild(ctx, "./cmd/port-runner-shim", out)
	case "C", "":
		var path string
		if path, _, err = shimtest.BuildC(dir); err == nil {
			err = os.Rename(path, out)
		} else {
			err = &NoCShimError{err}
		}
		shim = "C"
		if err != nil && kind == "" && !shimtest.Required() {
			shim, err = "Go", GoBuild(ctx, "./cmd/port-runner-shim", out)
		}
	default:
		err = fmt.Errorf("no shim of kind %q (C or Go)", kind)
	}
	if err != nil {
		return "", "", err
	}
	bin = filepath.Join(dir, "port-runner")
	return bin, shim, GoBuild(ctx, "./cmd/port-runner", bin)
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

//go:build linux

package sandbox_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/port-runner/port-runner/internal/sandbox"
	"github.com/port-runner/port-runner/internal/sandbox/sandboxtest"
)

// A process in a leaf cgroup without a limit of its own, below one with a limit (a container's
// cgroup, the agent moved to a leaf of it): its memory limit is the one above.
func TestMemoryMaxIsTheLimitAboveTheProcess(t *testing.T) {
	const limit = 300 << 20
	cg, err := sandboxtest.NewCgroup(t, os.Getuid(), 64, limit)
	if err != nil {
		t.Skip(err)
	}
	leaf := filepath.Join(cg.Memory, "leaf")
	if err := os.Mkdir(leaf, 0o755); err != nil {
		t.Fatal(err)
	}
	// The shell enters the cgroups, then becomes the probe.
	cmd := exec.Command("/bin/sh", "-c", `echo $$ > "$1" && echo $$ > "$2" && exec "$3" -test.run='^TestMemoryMaxProbe$'`,
		"sh", filepath.Join(cg.Pids, "cgroup.procs"), filepath.Join(leaf, "cgroup.procs"), os.Args[0])
	cmd.Env = append(os.Environ(), "PORT_RUNNER_MEMMAX_PROBE=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("probe: %v\n%s", err, out)
	}
	got, _, _ := strings.Cut(string(out), "\n")
	if got != strconv.Itoa(limit) {
		t.Fatalf("MemoryMax in a leaf below a %d-byte limit = %q", limit, got)
	}
}

// TestMemoryMaxProbe is TestMemoryMaxIsTheLimitAboveTheProcess's process.
func TestMemoryMaxProbe(t *testing.T) {
	if os.Getenv("PORT_RUNNER_MEMMAX_PROBE") == "" {
		t.Skip("run by TestMemoryMaxIsTheLimitAboveTheProcess")
	}
	fmt.Println(sandbox.MemoryMax())
}

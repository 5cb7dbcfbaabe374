//go:build linux

package harness

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/waitcond"
)

// cgroupMemory is where the cgroup v1 memory controller is mounted.
const cgroupMemory = "/sys/fs/cgroup/memory"

// MemoryGroup is a cgroup v1 memory group a test made under its own memory cgroup, to hold
// an agent process to a memory limit (the chart's, say) without touching any other process.
type MemoryGroup struct{ dir string }

// NewMemoryGroup makes a memory group limited to limit bytes (swap included, where the
// kernel accounts it) under the test's own memory cgroup. The test's end removes it once
// everything in it has exited: make it before starting what goes in it, so that its cleanup
// runs after theirs. It reports why not when it cannot (not root, no cgroup v1 memory
// controller).
func NewMemoryGroup(t testing.TB, limit int64) (*MemoryGroup, error) {
	t.Helper()
	own, err := ownMemoryCgroup()
	if err != nil {
		return nil, err
	}
	suffix := make([]byte, 6)
	if _, err := rand.Read(suffix); err != nil {
		return nil, err
	}
	dir := filepath.Join(cgroupMemory, own, "port-runner-test-"+hex.EncodeToString(suffix))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	g := &MemoryGroup{dir: dir}
	t.Cleanup(func() {
		// rmdir fails (EBUSY) while a process is still in the group: its exit is reaped
		// asynchronously, so wait for that.
		waitcond.For(t, "the memory group "+dir+" removed", 30*time.Second, func() bool {
			err := syscall.Rmdir(dir)
			return err == nil || errors.Is(err, os.ErrNotExist)
		})
	})
	if err := g.write("memory.limit_in_bytes", limit); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "memory.memsw.limit_in_bytes")); err == nil {
		if err := g.write("memory.memsw.limit_in_bytes", limit); err != nil { // no swap past it either
			return nil, err
		}
	}
	return g, nil
}

// ownMemoryCgroup is this process's memory cgroup path (cgroup v1), from /proc/self/cgroup.
func ownMemoryCgroup() (string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// hierarchy-ID:controller-list:cgroup-path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) == 3 && slices.Contains(strings.Split(parts[1], ","), "memory") {
			if _, err := os.Stat(filepath.Join(cgroupMemory, parts[2], "memory.limit_in_bytes")); err != nil {
				return "", fmt.Errorf("cgroup v1 memory controller not mounted at %s: %w", cgroupMemory, err)
			}
			return parts[2], nil
		}
	}
	return "", errors.New("no cgroup v1 memory controller for this process")
}

func (g *MemoryGroup) write(file string, v int64) error {
	return os.WriteFile(filepath.Join(g.dir, file), []byte(strconv.FormatInt(v, 10)), 0o644)
}

// Read is one of the group's counters (memory.max_usage_in_bytes, memory.failcnt, ...).
func (g *MemoryGroup) Read(t testing.TB, file string) int64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(g.dir, file))
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Add moves a process (and what it starts from then on) into the group.
func (g *MemoryGroup) Add(pid int) error { return g.write("cgroup.procs", int64(pid)) }

// PeakRSS is the process's high-water resident set size (VmHWM), in bytes.
func (p *Process) PeakRSS(t testing.TB) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("harness: no VmHWM in /proc/%d/status", p.Pid())
	return 0
}

// Package sandboxtest gives tests of hostile commands (fork bombs, memory hogs) a cgroup of
// their own to run in: made under the test process's own cgroup, with a ceiling that holds
// whatever runs inside, and removed after the test. Nothing hostile may run outside one on a
// shared machine.
package sandboxtest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/sandbox"
)

// Cgroup is a pair of cgroup v1 directories (pids, memory) made for one test.
type Cgroup struct {
	Pids, Memory string
}

// NewCgroup makes a pids cgroup (pids.max = maxProcs) and a memory cgroup (limit maxMem)
// under this process's own v1 cgroups, owned by uid (an agent of that uid may then make its
// run cgroups inside), and removes them at cleanup. It fails with a reason when the machine
// has no writable v1 pids and memory hierarchy; the caller skips and says so.
func NewCgroup(t testing.TB, uid, maxProcs int, maxMem int64) (*Cgroup, error) {
	t.Helper()
	pids, mem := sandbox.OwnV1()
	if pids == "" || mem == "" {
		return nil, errors.New("no cgroup v1 pids and memory hierarchy here")
	}
	name := fmt.Sprintf("port-runner-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	cg := &Cgroup{Pids: filepath.Join(pids, name), Memory: filepath.Join(mem, name)}
	for _, d := range []string{cg.Pids, cg.Memory} {
		if err := os.Mkdir(d, 0o755); err != nil {
			cg.remove(t)
			return nil, fmt.Errorf("make a test cgroup: %w", err)
		}
		t.Cleanup(func() { cg.remove(t) })
	}
	err := errors.Join(
		os.WriteFile(filepath.Join(cg.Pids, "pids.max"), []byte(strconv.Itoa(maxProcs)), 0),
		os.WriteFile(filepath.Join(cg.Memory, "memory.limit_in_bytes"), []byte(strconv.FormatInt(maxMem, 10)), 0),
		chownTree(cg.Pids, uid), chownTree(cg.Memory, uid))
	if err != nil {
		return nil, fmt.Errorf("set up a test cgroup: %w", err)
	}
	return cg, nil
}

// Procs is the cgroup.procs files a process writes its pid to, to enter the cgroup.
func (c *Cgroup) Procs() []string {
	return []string{filepath.Join(c.Pids, "cgroup.procs"), filepath.Join(c.Memory, "cgroup.procs")}
}

// Count is how many processes are in the pids cgroup and its children.
func (c *Cgroup) Count() int {
	b, _ := os.ReadFile(filepath.Join(c.Pids, "pids.current"))
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// remove removes the cgroups, their children first, once no process is left in them (the
// test's processes must be gone by then; it waits a little for the kernel to let go).
func (c *Cgroup) remove(t testing.TB) {
	for _, d := range []string{c.Pids, c.Memory} {
		var dirs []string
		_ = filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			deadline := time.Now().Add(10 * time.Second)
			for {
				err := os.Remove(dirs[i])
				if err == nil || errors.Is(err, os.ErrNotExist) {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("test cgroup %s left behind: %v", dirs[i], err)
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
}

func chownTree(dir string, uid int) error {
	return filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, uid)
	})
}

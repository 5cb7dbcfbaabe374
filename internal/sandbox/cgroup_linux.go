//go:build linux

package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Cgroups makes a cgroup per run inside the agent's own, where the agent may write there
// (a Kubernetes pod's /sys/fs/cgroup is read-only unless it is privileged, so this is
// detected, never assumed): cgroup v1's pids and memory controllers, or a cgroup v2 subtree
// delegated to the agent.
type Cgroups struct {
	v2           bool
	pids, memory string // the directories run cgroups go into ("": that controller is not ours)
}

// DetectCgroups finds where the agent may make run cgroups; nil and why when it may not.
func DetectCgroups() (*Cgroups, error) {
	paths, mounts, err := selfCgroupInfo()
	if err != nil {
		return nil, err
	}
	c := &Cgroups{}
	c.pids, c.memory = ownV1(paths, mounts)
	if !writableDir(c.pids) {
		c.pids = ""
	}
	if !writableDir(c.memory) {
		c.memory = ""
	}
	if c.pids != "" || c.memory != "" {
		return c, nil
	}
	for _, m := range mounts {
		if dir, ok := within(m, paths[""]); m.v2 && ok && paths[""] != "" {
			return delegateV2(dir)
		}
	}
	return nil, errors.New("no writable cgroup (a pod's /sys/fs/cgroup is read-only unless privileged)")
}

// OwnV1 is the directories of this process's cgroup v1 pids and memory cgroups, "" for a
// controller not mounted as v1.
func OwnV1() (pids, memory string) {
	paths, mounts, err := selfCgroupInfo()
	if err != nil {
		return "", ""
	}
	return ownV1(paths, mounts)
}

func selfCgroupInfo() (map[string]string, []cgroupMount, error) {
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, nil, err
	}
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, nil, err
	}
	return selfCgroups(strings.NewReader(string(self))), cgroupMounts(strings.NewReader(string(info))), nil
}

func ownV1(paths map[string]string, mounts []cgroupMount) (pids, memory string) {
	for _, m := range mounts {
		for _, ctrl := range m.controllers {
			if (ctrl != "pids" && ctrl != "memory") || paths[ctrl] == "" {
				continue
			}
			if dir, ok := within(m, paths[ctrl]); ok {
				if ctrl == "pids" {
					pids = dir
				} else {
					memory = dir
				}
			}
		}
	}
	return pids, memory
}

// CgroupsUnder makes run cgroups in the given directories (cgroup v1's pids and memory
// hierarchies; "" for one not to use), which the caller made and may write: tests, which
// must keep what they run inside a cgroup of their own.
func CgroupsUnder(pids, memory string) *Cgroups { return &Cgroups{pids: pids, memory: memory} }

// within is the directory of cgroup path under mount m (whose root may be a part of the
// hierarchy, outside a cgroup namespace).
func within(m cgroupMount, path string) (string, bool) {
	rel := path
	if m.root != "/" {
		if path != m.root && !strings.HasPrefix(path, m.root+"/") {
			return "", false
		}
		rel = strings.TrimPrefix(path, m.root)
	}
	dir := filepath.Join(m.point, rel)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return "", false
	}
	return dir, true
}

func writableDir(dir string) bool { return dir != "" && unix.Access(dir, unix.W_OK|unix.X_OK) == nil }

// delegateV2 readies a v2 cgroup for run children: its pids and memory controllers enabled
// for its subtree, which the kernel allows only once no process is in it, so its processes
// (the agent, and anything beside it) move to a leaf of their own first.
func delegateV2(dir string) (*Cgroups, error) {
	if !writableDir(dir) {
		return nil, fmt.Errorf("cgroup v2 %s is not writable (a pod's /sys/fs/cgroup is read-only unless privileged)", dir)
	}
	enabled, _ := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
	if !hasWords(string(enabled), "pids", "memory") {
		avail, _ := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
		if !hasWords(string(avail), "pids", "memory") {
			return nil, fmt.Errorf("cgroup v2 %s does not offer the pids and memory controllers", dir)
		}
		leaf := filepath.Join(dir, "port-runner-agent")
		if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("cgroup v2: %w", err)
		}
		procs, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		for _, pid := range strings.Fields(string(procs)) {
			_ = os.WriteFile(filepath.Join(leaf, "cgroup.procs"), []byte(pid), 0)
		}
		if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+pids +memory"), 0); err != nil {
			return nil, fmt.Errorf("cgroup v2: enable pids and memory for %s: %w", dir, err)
		}
	}
	return &Cgroups{v2: true, pids: dir, memory: dir}, nil
}

func hasWords(s string, words ...string) bool {
	have := map[string]bool{}
	for _, w := range strings.Fields(s) {
		have[w] = true
	}
	for _, w := range words {
		if !have[w] {
			return false
		}
	}
	return true
}

// Protections is what per-run cgroups enforce here.
func (c *Cgroups) Protections() []string {
	var p []string
	if c.pids != "" {
		p = append(p, CgroupPids)
	}
	if c.memory != "" {
		p = append(p, CgroupMemory)
	}
	return p
}

// String says where run cgroups go.
func (c *Cgroups) String() string {
	if c.v2 {
		return "cgroup v2 " + c.pids
	}
	return "cgroup v1 pids " + c.pids + ", memory " + c.memory
}

// RunCgroup is one run's cgroups: the command joins them (Procs) between fork and exec.
type RunCgroup struct {
	v2              bool
	pidsDir, memDir string
	Procs           []string // cgroup.procs files for the shim's --cgroup
}

// NewRun makes the run's cgroups, named name, with its limits (0: none).
func (c *Cgroups) NewRun(name string, processes int, memory int64) (*RunCgroup, error) {
	r := &RunCgroup{v2: c.v2}
	mk := func(parent string) (string, error) {
		dir := filepath.Join(parent, name)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return "", err
		}
		r.Procs = append(r.Procs, filepath.Join(dir, "cgroup.procs"))
		return dir, nil
	}
	var err error
	if c.pids != "" && processes > 0 {
		if r.pidsDir, err = mk(c.pids); err == nil {
			err = os.WriteFile(filepath.Join(r.pidsDir, "pids.max"), []byte(strconv.Itoa(processes)), 0)
		}
	}
	if err == nil && c.memory != "" && memory > 0 {
		if c.v2 && r.pidsDir != "" {
			r.memDir = r.pidsDir
		} else if r.memDir, err = mk(c.memory); err != nil {
			r.memDir = ""
		}
		file := "memory.limit_in_bytes"
		if c.v2 {
			file = "memory.max"
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(r.memDir, file), []byte(strconv.FormatInt(memory, 10)), 0)
		}
	}
	if err != nil {
		r.Remove()
		return nil, fmt.Errorf("run cgroup: %w", err)
	}
	return r, nil
}

// CountsProcesses reports whether the run has a pids cgroup.
func (r *RunCgroup) CountsProcesses() bool { return r.pidsDir != "" }

// Exceeded names the limit the run hit: "processes" once a fork was refused, "memory" once
// the kernel killed one of its processes for memory; "" when neither.
func (r *RunCgroup) Exceeded() string {
	if r.pidsDir != "" {
		b, _ := os.ReadFile(filepath.Join(r.pidsDir, "pids.events"))
		if eventCount(string(b), "max") > 0 {
			return "processes"
		}
	}
	if r.memDir != "" {
		file := "memory.oom_control"
		if r.v2 {
			file = "memory.events"
		}
		b, _ := os.ReadFile(filepath.Join(r.memDir, file))
		if eventCount(string(b), "oom_kill") > 0 {
			return "memory"
		}
	}
	return ""
}

// Remove removes the run's cgroups; the shim has ended and reaped every process of the run,
// but the kernel may take a moment to let the last one go.
func (r *RunCgroup) Remove() {
	for _, dir := range []string{r.pidsDir, r.memDir} {
		if dir == "" {
			continue
		}
		for i := 0; i < 100; i++ {
			if err := unix.Rmdir(dir); err == nil || errors.Is(err, unix.ENOENT) || !errors.Is(err, unix.EBUSY) {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
}

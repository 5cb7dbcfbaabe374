//go:build linux

package sandbox

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// MemoryMax is the lowest memory limit on this process's cgroup and the cgroups above it
// that its mount shows (cgroup v2's memory.max, v1's memory.limit_in_bytes): a container's
// limit, whether the agent is in the container's cgroup or in a leaf below it. 0 when none
// is set or none can be read.
func MemoryMax() int64 {
	paths, mounts, err := selfCgroupInfo()
	if err != nil {
		return 0
	}
	var lowest int64
	for _, m := range mounts {
		path, file := paths["memory"], "memory.limit_in_bytes"
		if m.v2 {
			path, file = paths[""], "memory.max"
		} else if !slices.Contains(m.controllers, "memory") {
			continue
		}
		dir, ok := within(m, path)
		if path == "" || !ok {
			continue
		}
		for ; ; dir = filepath.Dir(dir) {
			if v := readLimit(filepath.Join(dir, file)); v > 0 && (lowest == 0 || v < lowest) {
				lowest = v
			}
			if dir == m.point || !strings.HasPrefix(dir, m.point) {
				break
			}
		}
	}
	return lowest
}

// readLimit is a memory limit file's bytes; 0 for "max", v1's "unlimited" (a page-rounded
// MaxInt64) or a file that cannot be read.
func readLimit(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || v <= 0 || v >= 1<<62 {
		return 0
	}
	return v
}

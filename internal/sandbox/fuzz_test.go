package sandbox

import (
	"strings"
	"testing"
)

// The kernel writes these files, but a cgroup's name or a mount point may hold what a user
// chose: the parsers never panic and keep only what they can vouch for.

func FuzzSelfCgroups(f *testing.F) {
	for _, s := range []string{"4:memory:/process_api/abc\n8:pids:/\n0::/\n", "12:cpu,cpuacct:/a b\n", "0::/x:y\n", "::\n", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for ctrl, path := range selfCgroups(strings.NewReader(s)) {
			if !strings.HasPrefix(path, "/") || strings.Contains(ctrl, ",") {
				t.Fatalf("selfCgroups(%q): %q -> %q", s, ctrl, path)
			}
		}
	})
}

func FuzzCgroupMounts(f *testing.F) {
	for _, s := range []string{
		"35 25 0:30 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory\n",
		"36 25 0:31 /a\\040b /sys/fs/cgroup/unified rw shared:9 - cgroup2 cgroup2 rw\n",
		"1 2 3:4 / /x rw - ext4 /dev/sda rw\n", " - cgroup", "\\0", "a b c d e f - cgroup x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, m := range cgroupMounts(strings.NewReader(s)) {
			if m.v2 && len(m.controllers) > 0 {
				t.Fatalf("cgroupMounts(%q): a v2 mount with v1 controllers: %+v", s, m)
			}
		}
		_ = unescapeMount(s)
	})
}

func FuzzEventCount(f *testing.F) {
	for _, s := range []string{"max 3\n", "oom_kill 1\noom 2\n", "max -1", "max 99999999999999999999", " max\t1 "} {
		f.Add(s, "max")
	}
	f.Fuzz(func(t *testing.T, content, key string) {
		if n := eventCount(content, key); n < 0 {
			t.Fatalf("eventCount(%q, %q) = %d", content, key, n)
		}
	})
}

func TestParsers(t *testing.T) {
	got := selfCgroups(strings.NewReader("4:memory:/process_api/abc\n8:pids:/\n3:cpu,cpuacct:/c\n0::/v2\n"))
	if got["memory"] != "/process_api/abc" || got["pids"] != "/" || got["cpuacct"] != "/c" || got[""] != "/v2" {
		t.Errorf("selfCgroups: %v", got)
	}
	ms := cgroupMounts(strings.NewReader("35 25 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n36 25 0:31 / /sys/fs/cgroup/a\\040b rw - cgroup2 cgroup2 rw\n"))
	if len(ms) != 2 || ms[0].point != "/sys/fs/cgroup/memory" || ms[0].controllers[1] != "memory" || !ms[1].v2 || ms[1].point != "/sys/fs/cgroup/a b" {
		t.Errorf("cgroupMounts: %+v", ms)
	}
	if eventCount("oom 2\noom_kill 1\n", "oom_kill") != 1 || eventCount("max 0\n", "max") != 0 {
		t.Error("eventCount")
	}
}

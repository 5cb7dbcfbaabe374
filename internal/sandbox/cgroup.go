package sandbox

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// The parsing half of per-run cgroups (cgroup_linux.go does the rest): what /proc/self/cgroup,
// /proc/self/mountinfo and the events files say. All of it comes from the kernel, but a
// mount point or a cgroup's path can hold a name a user chose: each parser is fuzzed.

// selfCgroups reads /proc/self/cgroup: controller -> path for cgroup v1 ("4:memory:/a"),
// and "" -> path for v2 ("0::/a").
func selfCgroups(r io.Reader) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), ":", 3)
		if len(f) != 3 || !strings.HasPrefix(f[2], "/") {
			continue
		}
		if f[1] == "" {
			out[""] = f[2]
			continue
		}
		for _, c := range strings.Split(f[1], ",") {
			out[c] = f[2]
		}
	}
	return out
}

// cgroupMount is one cgroup file system mount: where it is, which part of the hierarchy it
// shows (root), and for v1 its controllers.
type cgroupMount struct {
	point, root string
	v2          bool
	controllers []string
}

// cgroupMounts reads /proc/self/mountinfo's cgroup and cgroup2 mounts:
// "ID PARENT MAJ:MIN ROOT POINT OPTIONS [TAGS...] - FSTYPE SOURCE SUPEROPTIONS".
func cgroupMounts(r io.Reader) []cgroupMount {
	var out []cgroupMount
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 3 {
			continue
		}
		m := cgroupMount{point: unescapeMount(f[4]), root: unescapeMount(f[3])}
		switch g[0] {
		case "cgroup2":
			m.v2 = true
		case "cgroup":
			m.controllers = strings.Split(g[2], ",")
		default:
			continue
		}
		out = append(out, m)
	}
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// eventCount is the number after key in a flat-keyed events file ("max 3", "oom_kill 1");
// 0 when it is absent.
func eventCount(content, key string) int64 {
	for _, line := range strings.Split(content, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if ok && k == key {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err == nil && n > 0 {
				return n
			}
		}
	}
	return 0
}

package shim

import (
	"strconv"
	"strings"
	"testing"
)

func TestStatPPid(t *testing.T) {
	for line, want := range map[string]int{
		"1234 (sh) S 42 1234 1234 0 -1":          42,
		"1234 (a) b) c) R 7 1 1":                 7, // comm with ") " in it: the last ')' counts
		"1234 (sleep\n) S 99 1":                  99,
		"1234 (x) S":                             -1,
		"garbage":                                -1,
		"1234 (x) S -5 1":                        -1,
		"1234 (x) S 99999999999999999999 1 1 1 ": -1,
	} {
		if got := statPPid([]byte(line)); got != want {
			t.Errorf("statPPid(%q) = %d, want %d", line, got, want)
		}
	}
}

// FuzzStatPPid: whatever comm a command picks, the parser neither panics nor finds a ppid
// that the line does not hold right after the state field.
func FuzzStatPPid(f *testing.F) {
	f.Add("sh", 42)
	f.Add("a) S 1 (", 7)
	f.Add("", 0)
	f.Fuzz(func(t *testing.T, comm string, ppid int) {
		if ppid < 0 || ppid > 1e9-1 {
			return
		}
		line := "1234 (" + comm + ") S " + strconv.Itoa(ppid) + " 1234 1234 0"
		if got := statPPid([]byte(line)); got != ppid {
			t.Errorf("statPPid(%q) = %d, want %d", line, got, ppid)
		}
		_ = statPPid([]byte(comm)) // arbitrary bytes: must not panic
	})
}

// FuzzParseArgs: the shim's options survive the trip through the command line (what the
// executor writes is what the shim reads), and nothing the shim is given makes it panic.
func FuzzParseArgs(f *testing.F) {
	f.Add("--fence\x001000\x00--oom\x001000\x00--rlimit\x004:0:0\x00--ids\x0047320:47320\x00--landlock\x004:1\x00--\x00/bin/true\x00true")
	f.Add("--cgroup\x00/sys/fs/cgroup/pids/x/cgroup.procs\x00--rlimit\x006:-1:-1\x00--")
	f.Add("--fence\x001000\x00--renewals\x005\x00--landlock\x004:1\x00--\x00/bin/true\x00true")
	f.Add("--renewals\x004\x00--landlock\x004:1\x00--") // the ruleset's fd: refused
	f.Add("--ids\x000:0\x00--")
	f.Add("--rlimit\x00::\x00--")
	f.Fuzz(func(t *testing.T, joined string) {
		o, rest, err := ParseArgs(strings.Split(joined, "\x00"))
		if err != nil {
			return
		}
		if o.UID < 0 || (o.UID == 0) != (o.GID == 0) || o.FenceMs < 0 || o.RenewalsFD != 0 && (o.RenewalsFD <= ControlFD || o.RenewalsFD > RulesetFD+1 || o.Landlock && o.RenewalsFD == RulesetFD) {
			t.Fatalf("ParseArgs(%q) accepted %+v", joined, o)
		}
		again, more, err := ParseArgs(append(o.Args(), append([]string{"--"}, rest...)...))
		if err != nil || strings.Join(again.Args(), " ") != strings.Join(o.Args(), " ") || strings.Join(more, "\x00") != strings.Join(rest, "\x00") {
			t.Fatalf("round trip of %q: %q %q, %v", o.Args(), again.Args(), more, err)
		}
	})
}

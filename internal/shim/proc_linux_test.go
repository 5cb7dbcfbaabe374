package shim

import (
	"strconv"
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

package executor

import (
	"context"
	"strconv"
	"strings"
	"testing"
)

// OnStart gets, once, the pid every process of the command descends from: the command's
// own without a shim, the shim's (its parent) with one. The Port API proxy binds the run's
// token to that tree.
func TestOnStartGivesTheRoot(t *testing.T) {
	for _, tc := range []struct {
		name string
		shim []string
		want string // which of the command's pids OnStart must name
	}{
		{"no shim", nil, "self"},
		{"shim", shim(), "parent"},
	} {
		var pids []int
		spec := Spec{Argv: []string{"sh", "-c", `echo "$$ $PPID"`}, Shim: tc.shim, OnStart: func(pid int) { pids = append(pids, pid) }}
		res, out := run(t, context.Background(), spec)
		if !res.Success || len(pids) != 1 {
			t.Fatalf("%s: %+v, OnStart called %d times (%v)", tc.name, res, len(pids), pids)
		}
		self, parent, _ := strings.Cut(strings.TrimSpace(out), " ")
		want := self
		if tc.want == "parent" {
			want = parent
		}
		if strconv.Itoa(pids[0]) != want {
			t.Errorf("%s: OnStart(%d), want the %s pid %s (command said %q)", tc.name, pids[0], tc.want, want, out)
		}
	}
}

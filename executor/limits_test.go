package executor

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/sandbox"
	"github.com/port-runner/port-runner/internal/sandbox/sandboxtest"
)

// TestBoundsEveryCommandGets: under the shim, every command is the OOM killer's first pick,
// dumps no core, and has the open-files limit of its action.
func TestBoundsEveryCommandGets(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the shim is Linux-only")
	}
	eachShim(t, func(t *testing.T, prefix []string) {
		res, out := run(t, context.Background(), Spec{
			Argv: []string{"sh", "-c", "cat /proc/self/oom_score_adj; ulimit -c; ulimit -n"}, Shim: prefix,
			Isolation: Isolation{Limits: Limits{OpenFiles: 64}},
		})
		if !res.Success || out != "1000\n0\n64\n" {
			t.Fatalf("oom_score_adj, core and open files limits: %q (%+v), want 1000, 0, 64", out, res)
		}
	})
}

// TestLimitsEndTheRunWithALabel: a run over its CPU time, its file size or its run
// directory's size fails with a label that says which.
func TestLimitsEndTheRunWithALabel(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the shim is Linux-only")
	}
	eachShim(t, func(t *testing.T, prefix []string) {
		for _, tc := range []struct {
			name, script string
			limits       Limits
			label        string
		}{
			{"cpu", "while :; do :; done", Limits{CPUTime: time.Second}, "limit exceeded: cpu time (1s)"},
			{"file", `set -e; head -c 2000000 /dev/zero > "$(dirname "$PORT_RUN_FILE")/big"; echo wrote`, Limits{RunDirSize: 1 << 20},
				"limit exceeded: file size (1MiB)"},
			{"run dir", `d=$(dirname "$PORT_RUN_FILE"); for i in 1 2 3; do head -c 900000 /dev/zero > "$d/f$i"; done; sleep 60`,
				Limits{RunDirSize: 1 << 20}, "limit exceeded: run directory (1MiB)"},
			// Below a path longer than PATH_MAX (20 names of 250 bytes), which a walk by
			// paths cannot stat, the same files count as much.
			{"run dir, deep", `d=$(dirname "$PORT_RUN_FILE"); n=$(printf '%0250d' 0); p=$n; for i in $(seq 9); do p=$p/$n; done
cd "$d" && mkdir -p "$p" && cd "$p" && mkdir -p "$p" || exit 9; for i in 1 2 3; do head -c 900000 /dev/zero > "$p/f$i"; done; sleep 60`,
				Limits{RunDirSize: 1 << 20}, "limit exceeded: run directory (1MiB)"},
			// Deeper than it is counted (an open file per level), a tree counts as over.
			{"run dir, deeper than counted", `cd "$(dirname "$PORT_RUN_FILE")" || exit 9; for i in $(seq 300); do mkdir d && cd d || exit 9; done; sleep 60`,
				Limits{RunDirSize: 1 << 20}, "limit exceeded: run directory (1MiB)"},
		} {
			res, out := run(t, context.Background(), Spec{
				Argv: []string{"sh", "-c", tc.script}, Shim: prefix, Timeout: time.Minute, KillGrace: time.Second,
				Isolation: Isolation{Limits: tc.limits},
			})
			if res.Success || res.Label != tc.label {
				t.Errorf("%s: %+v (output %q), want %q", tc.name, res, out, tc.label)
			}
		}
	})
}

// TestHostileRunsFailAlone: a fork bomb and a memory hog end their own run with a label
// that says which limit, while a run beside them succeeds. They run as a uid of their own
// (runAs): never as root, and never outside a bound that holds them (RLIMIT_NPROC of a uid
// nothing else uses, or a cgroup this test makes under its own with a ceiling of its own).
func TestHostileRunsFailAlone(t *testing.T) {
	if runtime.GOOS != "linux" || os.Getuid() != 0 {
		t.Skip("not checked: runs of a uid of their own need root here (CAP_SETUID, CAP_SETGID, cgroups)")
	}
	cg, cgErr := sandboxtest.NewCgroup(t, 0, 300, 768<<20)
	uids, err := sandbox.NewUIDs(testRunUIDLo, testRunUIDHi)
	if err != nil {
		t.Fatal(err)
	}
	eachShim(t, func(t *testing.T, prefix []string) {
		for _, tc := range []struct {
			name, script, label string
			cgroup              bool
			limits              Limits
		}{
			{"fork bomb, RLIMIT_NPROC of its uid", "while :; do sleep 60 & done", "limit exceeded: processes (20)", false, Limits{Processes: 20}},
			{"fork bomb, pids cgroup", "while :; do sleep 60 & done", "limit exceeded: processes (20)", true, Limits{Processes: 20}},
			{"memory hog, memory cgroup", "dd if=/dev/zero of=/dev/null bs=400M count=1; sleep 60", "limit exceeded: memory (64MiB)", true,
				Limits{Memory: 64 << 20}},
		} {
			iso := Isolation{UIDs: uids, Limits: tc.limits}
			if tc.cgroup {
				if cgErr != nil {
					t.Logf("%s: not checked: %v", tc.name, cgErr)
					continue
				}
				iso.Cgroups = sandbox.CgroupsUnder(cg.Pids, cg.Memory)
			}
			// The run beside it starts first and ends only once the hostile one has ended.
			over := filepath.Join(sharedDir(t), "over")
			besideDone := make(chan Result, 1)
			beside := newNotifyWriter()
			go func() {
				besideDone <- Run(context.Background(), Spec{Argv: []string{"sh", "-c", `echo up; while [ ! -e "$1" ]; do sleep 0.05; done; echo done`, "sh", over},
					Shim: prefix, Isolation: Isolation{UIDs: uids}, Timeout: 3 * time.Minute}, beside)
			}()
			select {
			case <-beside.lines:
			case b := <-besideDone:
				t.Fatalf("%s: the run beside it ended first: %+v %q", tc.name, b, beside.String())
			}
			res, out := run(t, context.Background(), Spec{
				Argv: []string{"sh", "-c", tc.script}, Shim: prefix, Timeout: 2 * time.Minute, KillGrace: time.Second, Isolation: iso,
			})
			if err := os.WriteFile(over, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if res.Success || res.Label != tc.label {
				t.Errorf("%s: %+v (output %.300q), want %q", tc.name, res, out, tc.label)
			}
			if b := <-besideDone; !b.Success || !strings.Contains(beside.String(), "done") {
				t.Errorf("%s: the run beside it: %+v %q", tc.name, b, beside.String())
			}
		}
	})
}

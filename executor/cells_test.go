//go:build linux

package executor

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/sandbox"
)

// sandboxedRuns is a RunsDir and a sandbox that keeps it private, as the agent makes them.
func sandboxedRuns(t testing.TB) (*RunsDir, *sandbox.Sandbox) {
	t.Helper()
	if sandbox.LandlockABI() < 1 {
		t.Skip("not checked: the kernel has no Landlock")
	}
	root := filepath.Join(t.TempDir(), "runs")
	runs, _, err := OpenRunsDir(root, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = runs.Close() })
	layout, err := sandbox.NewLayout([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := sandbox.New(layout)
	if err != nil {
		t.Fatal(err)
	}
	return runs, sb
}

// cellRun runs script sandboxed in a new run directory of runs and removes it after, as
// the agent does; it returns the run directory, the output and the cell's rulesets then.
func cellRun(t *testing.T, runs *RunsDir, sb *sandbox.Sandbox, prefix []string, script string, write ...string) (dir, out string, rulesets map[string]cellRuleset) {
	t.Helper()
	dir, err := runs.NewRunDir()
	if err != nil {
		t.Fatal(err)
	}
	res, out := run(t, context.Background(), Spec{Argv: []string{"sh", "-c", script}, RunDir: dir, Shim: prefix, Timeout: time.Minute,
		Env: map[string]string{"PATH": os.Getenv("PATH")}, Isolation: Isolation{Sandbox: sb, Runs: runs, Write: write}})
	if c := runs.cellOf(dir); c != nil {
		rulesets = maps.Clone(c.rulesets)
	}
	if err := runs.ReleaseRunDir(dir); err != nil {
		t.Fatal(err)
	}
	if !res.Success && !strings.Contains(script, "kill") {
		t.Fatalf("%q: %+v\n%s", script, res, out)
	}
	return dir, out, rulesets
}

// TestACellKeepsItsRulesetForTheNextRun: sandboxed runs one after another take the same
// cell (run directory) and its ruleset, built once; each writes it, and finds nothing of
// the run before.
func TestACellKeepsItsRulesetForTheNextRun(t *testing.T) {
	eachShim(t, func(t *testing.T, prefix []string) {
		runs, sb := sandboxedRuns(t)
		const script = `d=$(dirname "$PORT_RUN_FILE"); echo "saw:" $(ls -A "$d"); echo x > "$d/out" && echo wrote`
		var cells []string
		var first *os.File
		for i := range 3 {
			dir, out, rulesets := cellRun(t, runs, sb, prefix, script)
			if !strings.Contains(out, "saw: home run.json tmpdir\n") || !strings.Contains(out, "wrote\n") {
				t.Errorf("run %d: %q, want its own fresh directory, written", i, out)
			}
			if len(rulesets) != 1 {
				t.Fatalf("run %d: its cell has %d rulesets, want 1", i, len(rulesets))
			}
			for _, r := range rulesets {
				if first == nil {
					first = r.file
				} else if r.file != first {
					t.Errorf("run %d: a new ruleset, want the cell's first one again", i)
				}
			}
			cells = append(cells, dir)
		}
		if cells[0] != cells[1] || cells[1] != cells[2] {
			t.Errorf("the runs' cells: %q, want one cell for all", cells)
		}
		if _, err := os.Stat(cells[0]); err != nil {
			t.Errorf("the idle cell is gone: %v", err)
		}
	})
}

// TestACellComesBackEmptyAndReset: what a run leaves in its directory, and the mode it
// gives it, are gone when the cell serves the next run; a link it left is removed, never
// followed.
func TestACellComesBackEmptyAndReset(t *testing.T) {
	eachShim(t, func(t *testing.T, prefix []string) {
		runs, sb := sandboxedRuns(t)
		target := filepath.Join(t.TempDir(), "outside")
		if err := os.WriteFile(target, []byte("keep"), 0o600); err != nil {
			t.Fatal(err)
		}
		dir, out, _ := cellRun(t, runs, sb, prefix, `d=$(dirname "$PORT_RUN_FILE"); mkdir -p "$d/a/b" && echo x > "$d/a/b/f" &&
ln -s "`+target+`" "$d/link" && ln -s "`+target+`" "$d/response.json" && echo y > "$HOME/.cfg" && chmod 777 "$d" "$d/a" && echo left`)
		if !strings.Contains(out, "left") {
			t.Fatalf("the run could not write its directory: %q", out)
		}
		next, out, _ := cellRun(t, runs, sb, prefix, `d=$(dirname "$PORT_RUN_FILE"); echo "saw:" $(ls -A "$d") $(ls -A "$HOME"); stat -c 'mode: %a' "$d"`)
		if next != dir || !strings.Contains(out, "saw: home run.json tmpdir\n") || !strings.Contains(out, "mode: 700\n") {
			t.Errorf("the next run in %s (the first in %s) saw %q, want the same cell, as new", next, dir, out)
		}
		if b, err := os.ReadFile(target); err != nil || string(b) != "keep" {
			t.Errorf("the file a link named: %q, %v", b, err)
		}
	})
}

// TestARunHasNoRightOnWhatHoldsItsDirectory: a run can neither rename its directory (and
// put a link to elsewhere in its place, for the agent to read the run's response and
// remove the run's files through) nor write beside it (past its runDirSize, or for the
// next run of the cell).
func TestARunHasNoRightOnWhatHoldsItsDirectory(t *testing.T) {
	eachShim(t, func(t *testing.T, prefix []string) {
		runs, sb := sandboxedRuns(t)
		victim := t.TempDir() // under /tmp: out of the sandbox's reach
		for _, name := range []string{runFileName, "response.json"} {
			if err := os.WriteFile(filepath.Join(victim, name), []byte("VICTIM "+name), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		dir, err := runs.NewRunDir()
		if err != nil {
			t.Fatal(err)
		}
		script := `d=$(dirname "$PORT_RUN_FILE"); mv "$d" "$d.old" && ln -s "` + victim + `" "$d" && echo replaced
echo x > "$d/../beside" && echo beside; echo done`
		res, out := run(t, context.Background(), Spec{Argv: []string{"sh", "-c", script}, RunDir: dir, Shim: prefix, Timeout: time.Minute,
			Env: map[string]string{"PATH": os.Getenv("PATH")}, Isolation: Isolation{Sandbox: sb, Runs: runs}})
		if !res.Success || strings.Contains(out, "replaced") || strings.Contains(out, "beside\n") || !strings.Contains(out, "done") {
			t.Errorf("%+v %q: want neither its directory replaced nor a file beside it", res, out)
		}
		if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() {
			t.Errorf("the run's directory: %v %v", fi, err)
		}
		_ = runs.ReleaseRunDir(dir, "response.json")
		for _, name := range []string{runFileName, "response.json"} {
			if _, err := os.Stat(filepath.Join(victim, name)); err != nil {
				t.Errorf("%s outside the run's directory: %v", name, err)
			}
		}
	})
}

// TestACellWithExtendedAttributesIsNotReused: Landlock does not govern extended attributes
// (ACLs among them); a cell its run set one on is removed, not handed to the next run.
func TestACellWithExtendedAttributesIsNotReused(t *testing.T) {
	runs, sb := sandboxedRuns(t)
	dir, out, _ := cellRun(t, runs, sb, []string{tinyShim},
		`python3 -c 'import os,sys; os.setxattr(sys.argv[1], "user.note", b"left by run 1"); print("set")' "$(dirname "$PORT_RUN_FILE")" 2>&1 || true`)
	if !strings.Contains(out, "set\n") {
		t.Skipf("no user extended attribute could be set here: %q", out)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the cell is still there: %v", err)
	}
	if next, _, _ := cellRun(t, runs, sb, []string{tinyShim}, `true`); next == dir {
		t.Errorf("the next run took the cell %s", dir)
	}
}

// TestACellOfARunEndedBySignalIsNotReused: when the shim does not end by itself, something
// of the run may outlive it, and the cell's ruleset would let it into the next run's
// directory: the cell is not used again.
func TestACellOfARunEndedBySignalIsNotReused(t *testing.T) {
	eachShim(t, func(t *testing.T, prefix []string) {
		runs, sb := sandboxedRuns(t)
		dir, _, _ := cellRun(t, runs, sb, prefix, `kill -KILL $$`)
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("the killed run's cell is still there: %v", err)
		}
		if next, _, _ := cellRun(t, runs, sb, prefix, `true`); next == dir {
			t.Errorf("the next run took the killed run's cell %s", dir)
		}
	})
}

// TestAWriteDirMadeAnewGetsANewRuleset: Landlock's rules hold files, not names, so a
// sandbox.write directory removed and made again between two runs of a cell needs a new
// ruleset for the second run to write it.
func TestAWriteDirMadeAnewGetsANewRuleset(t *testing.T) {
	eachShim(t, func(t *testing.T, prefix []string) {
		runs, sb := sandboxedRuns(t)
		shared := filepath.Join(t.TempDir(), "cache")
		for i := range 2 {
			if err := os.RemoveAll(shared); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(shared, 0o700); err != nil {
				t.Fatal(err)
			}
			_, out, rulesets := cellRun(t, runs, sb, prefix, `echo x > "`+shared+`/f" && echo wrote || echo denied`, shared)
			if !strings.Contains(out, "wrote") {
				t.Errorf("run %d: %q, want the write directory written", i, out)
			}
			if len(rulesets) != i+1 {
				t.Errorf("run %d: the cell has %d rulesets, want %d", i, len(rulesets), i+1)
			}
		}
	})
}

// TestIdleCellsAreBounded: after a burst, at most maxIdleCells cells stay; one whose run
// was not sandboxed in it goes.
func TestIdleCellsAreBounded(t *testing.T) {
	runs, _, err := OpenRunsDir(filepath.Join(t.TempDir(), "runs"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer runs.Close()
	var dirs []string
	for range maxIdleCells + 10 {
		dir, err := runs.NewRunDir()
		if err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
	}
	for _, d := range dirs {
		if err := runs.cellOf(d).identify(); err != nil { // as its first ruleset does
			t.Fatal(err)
		}
		runs.served(d) // as a sandboxed run's shim that ended by itself
		if err := runs.ReleaseRunDir(d); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(runs.dir)
	if err != nil || len(entries) != maxIdleCells {
		t.Errorf("%d cells left (%v), want %d", len(entries), err, maxIdleCells)
	}
	dir, err := runs.NewRunDir()
	if err != nil {
		t.Fatal(err)
	}
	if err := runs.ReleaseRunDir(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("a directory no sandboxed run served is still there: %v", err)
	}
}

// TestAWriteDirMountedAgainGetsANewRuleset: a sandbox.write directory that is a mount point
// unmounted and mounted again between two runs of a cell comes back with the same device
// and inode numbers, but the cell's ruleset holds the old mount's root, which allows
// nothing now: the mount's id tells them apart.
func TestAWriteDirMountedAgainGetsANewRuleset(t *testing.T) {
	runs, sb := sandboxedRuns(t)
	shared := filepath.Join(t.TempDir(), "cache")
	if err := os.Mkdir(shared, 0o700); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := syscall.Mount("none", shared, "tmpfs", 0, ""); err != nil {
			t.Skipf("mount: %v", err)
		}
		_, out, _ := cellRun(t, runs, sb, []string{tinyShim}, `echo x > "`+shared+`/f" && echo wrote || echo denied`, shared)
		if err := syscall.Unmount(shared, 0); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "wrote") {
			t.Errorf("run %d: %q, want the write directory written", i, out)
		}
	}
}

// TestARunAsCellServesTheNextRun: under runAs a sandboxed run owns its directory (and may
// chmod it); the cell comes back the agent's, 0700 and empty, and the next run, whatever
// its uid, gets it as new.
func TestARunAsCellServesTheNextRun(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("not checked: runAs needs CAP_SETUID and CAP_SETGID, which this test run lacks")
	}
	uids, err := sandbox.NewUIDs(testRunUIDLo, testRunUIDHi)
	if err != nil {
		t.Fatal(err)
	}
	runs, _, err := OpenRunsDir(filepath.Join(sharedDir(t), "runs"), true) // a uid of a run passes through
	if err != nil {
		t.Fatal(err)
	}
	defer runs.Close()
	layout, err := sandbox.NewLayout([]string{runs.Root()})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := sandbox.New(layout)
	if err != nil {
		t.Skipf("not checked: %v (only a sandboxed run's directory serves again)", err)
	}
	var dirs []string
	for i, script := range []string{
		`d=$(dirname "$PORT_RUN_FILE"); echo x > "$d/left" && mkdir "$d/sub" && chmod 777 "$d" && echo "uid: $(id -u)"`,
		`d=$(dirname "$PORT_RUN_FILE"); echo "saw:" $(ls -A "$d"); echo x > "$d/new" && echo "uid: $(id -u) wrote"`,
	} {
		dir, err := runs.NewRunDir()
		if err != nil {
			t.Fatal(err)
		}
		res, out := run(t, context.Background(), Spec{Argv: []string{"sh", "-c", script}, RunDir: dir, Shim: []string{tinyShim}, Timeout: time.Minute,
			Env: map[string]string{"PATH": os.Getenv("PATH")}, Isolation: Isolation{UIDs: uids, Runs: runs, Sandbox: sb}})
		if err := runs.ReleaseRunDir(dir); err != nil {
			t.Fatal(err)
		}
		if !res.Success || !strings.Contains(out, "uid: 473") || (i == 1 && !strings.Contains(out, "saw: home run.json tmpdir\n")) {
			t.Fatalf("run %d: %+v %q", i, res, out)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(dir, &st); err != nil || st.Uid != 0 || st.Mode&0o7777 != 0o700 {
			t.Errorf("run %d's cell after it: %v uid %d mode %o, want the agent's, 0700", i, err, st.Uid, st.Mode&0o7777)
		}
		dirs = append(dirs, dir)
	}
	if dirs[0] != dirs[1] {
		t.Errorf("the runs' directories: %q, want one cell for both", dirs)
	}
}

// TestACellLosesTheCallersFiles: a caller's file named at release (the response, say) goes
// with the cell's clearing, whether the run wrote it, made it a full directory, or never
// made it.
func TestACellLosesTheCallersFiles(t *testing.T) {
	runs, sb := sandboxedRuns(t)
	for _, script := range []string{
		`echo '{}' > "$d/response.json"`,
		`mkdir "$d/response.json" && echo x > "$d/response.json/f"`,
		`true`,
	} {
		dir, err := runs.NewRunDir()
		if err != nil {
			t.Fatal(err)
		}
		res, out := run(t, context.Background(), Spec{Argv: []string{"sh", "-c", `d=$(dirname "$PORT_RUN_FILE"); ` + script},
			RunDir: dir, Shim: []string{tinyShim}, Env: map[string]string{"PATH": os.Getenv("PATH")}, Isolation: Isolation{Sandbox: sb, Runs: runs}})
		if !res.Success {
			t.Fatalf("%q: %+v %q", script, res, out)
		}
		if err := runs.ReleaseRunDir(dir, "response.json"); err != nil {
			t.Fatal(err)
		}
		if runs.cellOf(dir) != nil || len(runs.idle) != 1 || runs.idle[0].dir != dir {
			t.Fatalf("%q: the cell does not serve again", script)
		}
		if left, err := os.ReadDir(dir); err != nil || len(left) != 0 {
			t.Errorf("%q: the idle cell holds %v (%v), want nothing", script, left, err)
		}
	}
}

//go:build linux

package executor

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/sandbox"
)

// sandboxedRuns is a RunsDir and a sandbox that keeps it private, as the agent makes them.
func sandboxedRuns(t *testing.T) (*RunsDir, *sandbox.Sandbox) {
	t.Helper()
	if sandbox.LandlockABI() < 1 {
		t.Skip("not checked: the kernel has no Landlock")
	}
	root := filepath.Join(t.TempDir(), "runs")
	runs, _, err := OpenRunsDir(root, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(runs.Close)
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
	if err := runs.RemoveRunDir(dir); err != nil {
		t.Fatal(err)
	}
	if !res.Success && !strings.Contains(script, "kill") {
		t.Fatalf("%q: %+v\n%s", script, res, out)
	}
	return dir, out, rulesets
}

// TestACellKeepsItsRulesetForTheNextRun: sandboxed runs one after another take the same
// cell and its ruleset, built once; each writes its own run directory, which holds nothing
// of the run before.
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
			cells = append(cells, filepath.Dir(dir))
		}
		if cells[0] != cells[1] || cells[1] != cells[2] {
			t.Errorf("the runs' cells: %q, want one cell for all", cells)
		}
		if _, err := os.Stat(cells[0]); err != nil {
			t.Errorf("the idle cell is gone: %v", err)
		}
	})
}

// TestACellARunLeftSomethingInIsNotReused: the cell's ruleset lets a run write beside its
// run directory; what it leaves there would reach the next run of the cell, so the cell
// goes, with it, and the next run gets a new one.
func TestACellARunLeftSomethingInIsNotReused(t *testing.T) {
	eachShim(t, func(t *testing.T, prefix []string) {
		runs, sb := sandboxedRuns(t)
		dir, out, _ := cellRun(t, runs, sb, prefix, `echo left > "$(dirname "$PORT_RUN_FILE")/../left" && echo wrote`)
		if !strings.Contains(out, "wrote") {
			t.Fatalf("the run could not write in its cell: %q", out)
		}
		if _, err := os.Stat(filepath.Dir(dir)); !os.IsNotExist(err) {
			t.Errorf("the cell the run wrote in is still there: %v", err)
		}
		next, out, _ := cellRun(t, runs, sb, prefix, `cat "$(dirname "$PORT_RUN_FILE")/../left" || echo nothing`)
		if filepath.Dir(next) == filepath.Dir(dir) || strings.Contains(out, "left\n") || !strings.Contains(out, "nothing") {
			t.Errorf("next run in %s (the first in %s) read %q, want a new cell and nothing left", next, dir, out)
		}
	})
}

// TestACellOfARunEndedBySignalIsNotReused: when the shim does not end by itself, something
// of the run may outlive it, and the cell's ruleset would let it into the next run's
// directory: the cell is not used again.
func TestACellOfARunEndedBySignalIsNotReused(t *testing.T) {
	eachShim(t, func(t *testing.T, prefix []string) {
		runs, sb := sandboxedRuns(t)
		dir, _, _ := cellRun(t, runs, sb, prefix, `kill -KILL $$`)
		if _, err := os.Stat(filepath.Dir(dir)); !os.IsNotExist(err) {
			t.Errorf("the killed run's cell is still there: %v", err)
		}
		next, _, _ := cellRun(t, runs, sb, prefix, `true`)
		if filepath.Dir(next) == filepath.Dir(dir) {
			t.Errorf("the next run took the killed run's cell %s", filepath.Dir(dir))
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

// TestIdleCellsAreBounded: after a burst, at most maxIdleCells cells stay.
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
		if err := runs.RemoveRunDir(d); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(runs.dir)
	if err != nil || len(entries) != maxIdleCells {
		t.Errorf("%d cells left (%v), want %d", len(entries), err, maxIdleCells)
	}
}

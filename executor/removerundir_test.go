//go:build unix

package executor

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// A run's directory goes whatever its command did to it, and removing it never reaches
// through a link the command left in place of a known name.
func TestRemoveRunDirRemovesWhatARunLeft(t *testing.T) {
	outside := t.TempDir()
	keep := filepath.Join(outside, "keep")
	if err := os.WriteFile(keep, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, left := range map[string]func(t *testing.T, dir string){
		"as made": func(*testing.T, string) {},
		"a file in home": func(t *testing.T, dir string) {
			writeJSON(t, filepath.Join(dir, "home", ".cache"))
		},
		"home a link to outside": func(t *testing.T, dir string) {
			mustOK(t, os.Remove(filepath.Join(dir, "home")))
			mustOK(t, os.Symlink(outside, filepath.Join(dir, "home")))
		},
		"run file a link to a file outside": func(t *testing.T, dir string) {
			mustOK(t, os.Remove(filepath.Join(dir, runFileName)))
			mustOK(t, os.Symlink(keep, filepath.Join(dir, runFileName)))
		},
		"run file a full directory": func(t *testing.T, dir string) {
			mustOK(t, os.Remove(filepath.Join(dir, runFileName)))
			mustOK(t, os.Mkdir(filepath.Join(dir, runFileName), 0o700))
			writeJSON(t, filepath.Join(dir, runFileName, "x"))
		},
		"response and other files": func(t *testing.T, dir string) {
			writeJSON(t, filepath.Join(dir, "response.json"))
			writeJSON(t, filepath.Join(dir, "other"))
			mustOK(t, syscall.Mkfifo(filepath.Join(dir, "tmpdir", "fifo"), 0o600))
		},
		"tmpdir gone": func(t *testing.T, dir string) {
			mustOK(t, os.Remove(filepath.Join(dir, "tmpdir")))
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := madeRunDir(t)
			left(t, dir)
			if err := RemoveRunDir(dir, "response.json"); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(dir); !os.IsNotExist(err) {
				t.Fatalf("run directory still there: %v", err)
			}
			if b, err := os.ReadFile(keep); err != nil || string(b) != "x" {
				t.Fatalf("a file outside the run directory changed: %q, %v", b, err)
			}
			if _, err := os.Stat(outside); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// madeRunDir is a run directory as prepare leaves it for a confined run.
func madeRunDir(t testing.TB) string {
	dir, err := os.MkdirTemp(t.TempDir(), "run-*")
	mustOK(t, err)
	writeJSON(t, filepath.Join(dir, runFileName))
	for _, d := range runHomeDirs {
		mustOK(t, os.Mkdir(filepath.Join(dir, d.dir), 0o700))
	}
	return dir
}

func writeJSON(t testing.TB, path string) { mustOK(t, os.WriteFile(path, []byte("{}"), 0o600)) }

func mustOK(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Removing a run's directory is paid by every run (README "Isolation": a directory each).
func BenchmarkRemoveRunDir(b *testing.B) {
	for _, c := range []struct {
		name   string
		remove func(string) error
	}{{"known entries", func(dir string) error { return RemoveRunDir(dir, "response.json") }}, {"os.RemoveAll", os.RemoveAll}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			root := b.TempDir()
			if d := os.Getenv("BENCH_RUN_ROOT"); d != "" {
				root = d
			}
			for b.Loop() {
				b.StopTimer()
				dir, err := os.MkdirTemp(root, "run-*")
				mustOK(b, err)
				writeJSON(b, filepath.Join(dir, runFileName))
				for _, d := range runHomeDirs {
					mustOK(b, os.Mkdir(filepath.Join(dir, d.dir), 0o700))
				}
				b.StartTimer()
				if err := c.remove(dir); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

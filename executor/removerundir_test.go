//go:build unix

package executor

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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

// A command may leave directories that its own uid can neither write nor search: Go's
// module cache is read-only (0555), a script may chmod 000, deeper than any walk goes or
// among more entries than one read lists, with names the agent might move things to taken. The agent runs as that uid (not root, in its
// image) and still removes them, and never changes a mode through a link the command left.
func TestRemoveRunDirRemovesWhatItsOwnerLockedUp(t *testing.T) {
	base := sharedDir(t)
	t.Cleanup(func() { _ = exec.Command("chmod", "-R", "u+rwx", base).Run() }) // what a failure left
	outside := filepath.Join(base, "outside")
	mustOK(t, os.Mkdir(outside, 0o500))
	dir := filepath.Join(base, "run")
	mustOK(t, os.Mkdir(dir, 0o700))
	script := `set -e
cd "$1"
echo '{}' > run.json
mkdir -p home/go/pkg/mod/m@v1/sub tmpdir/locked/deeper tmpdir/nosearch
echo x > home/go/pkg/mod/m@v1/sub/f.go; echo x > tmpdir/locked/deeper/f; echo x > tmpdir/nosearch/f
ln -s "$2" tmpdir/locked/outside
chmod 0444 home/go/pkg/mod/m@v1/sub/f.go
chmod 0555 home/go/pkg/mod/m@v1/sub home/go/pkg/mod/m@v1 home/go/pkg/mod
chmod 000 tmpdir/locked/deeper tmpdir/locked
chmod 0600 tmpdir/nosearch
p=tmpdir/deep; for i in $(seq 150); do p=$p/d; done
mkdir -p $p/x/y; echo x > $p/x/y/f; chmod 000 $p/x
mkdir tmpdir/wide; for i in $(seq 300); do mkdir tmpdir/wide/$i; done
echo x > tmpdir/wide/300/f; chmod 0555 tmpdir/wide/300
chmod 0500 home tmpdir
for i in 1 2 3 4 5 6 7 8; do : > .port-runner-deep-$i; done
chmod 0500 .`
	var out []byte
	var err error
	if os.Getuid() == 0 {
		// As the agent's image runs it: a uid of its own, no capability.
		if _, lerr := exec.LookPath("setpriv"); lerr != nil {
			t.Skip("not checked: setpriv (util-linux) is not installed")
		}
		id := strconv.Itoa(testAgentUID)
		mustOK(t, os.Chown(dir, testAgentUID, testAgentUID))
		mustOK(t, os.Chown(outside, testAgentUID, testAgentUID))
		asAgent := func(args ...string) *exec.Cmd {
			return exec.Command("setpriv", append([]string{"--reuid=" + id, "--regid=" + id, "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"}, args...)...)
		}
		if out, err = asAgent("sh", "-c", script, "sh", dir, outside).CombinedOutput(); err != nil {
			t.Fatalf("leaving the tree: %v\n%s", err, out)
		}
		bin := filepath.Join(base, "executor.test")
		copyFile(t, os.Args[0], bin)
		cmd := asAgent(bin, "-test.run=^TestHelperRemoveRunDir$")
		cmd.Env = append(os.Environ(), "EXECUTOR_TEST_BASE="+base, "EXECUTOR_TEST_REMOVE="+dir)
		out, err = cmd.CombinedOutput()
	} else {
		if out, err = exec.Command("sh", "-c", script, "sh", dir, outside).CombinedOutput(); err != nil {
			t.Fatalf("leaving the tree: %v\n%s", err, out)
		}
		err = RemoveRunDir(dir, "response.json")
	}
	if err != nil || strings.Contains(string(out), "FAIL") {
		t.Fatalf("remove: %v\n%s", err, out)
	}
	if _, err := os.Lstat(dir); !os.IsNotExist(err) {
		t.Fatalf("run directory still there: %v", err)
	}
	if st, err := os.Stat(outside); err != nil || st.Mode().Perm() != 0o500 {
		t.Fatalf("the directory a link named changed: %v, %v", st.Mode(), err)
	}
}

// TestHelperRemoveRunDir removes $EXECUTOR_TEST_REMOVE as the uid it runs as.
func TestHelperRemoveRunDir(t *testing.T) {
	dir := os.Getenv("EXECUTOR_TEST_REMOVE")
	if dir == "" {
		t.Skip("helper process only")
	}
	if err := RemoveRunDir(dir, "response.json"); err != nil {
		t.Fatal(err)
	}
}

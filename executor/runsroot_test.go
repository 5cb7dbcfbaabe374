//go:build unix

package executor

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// openDir makes dir with exactly mode (past the umask).
func openDir(t *testing.T, dir string, mode fs.FileMode) string {
	t.Helper()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A shared directory is often setgid (2777: its files take its group); making it sticky
// must not take that away from whoever else uses it.
func TestRunsRootAncestorKeepsItsSetgidBit(t *testing.T) {
	shared := openDir(t, filepath.Join(t.TempDir(), "shared"), 0o777|fs.ModeSetgid)
	r, _, err := OpenRunsDir(filepath.Join(shared, "runs"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fi, err := os.Stat(shared)
	if err != nil {
		t.Fatal(err)
	}
	if want := fs.ModeDir | 0o777 | fs.ModeSetgid | fs.ModeSticky; fi.Mode() != want {
		t.Errorf("the shared parent is %v, want %v: sticky, its other bits kept", fi.Mode(), want)
	}
}

// The runs root may be named through a link (a RUNTIME_DIRECTORY or executor.runsDir whose
// parent is one): a world-writable, non-sticky directory around the real path is as open.
func TestRunsRootThroughALinkHasItsRealAncestorsMadeSticky(t *testing.T) {
	base := t.TempDir()
	open := openDir(t, filepath.Join(base, "open"), 0o777)
	openDir(t, filepath.Join(open, "rt"), 0o755)
	link := filepath.Join(base, "rt")
	if err := os.Symlink(filepath.Join(open, "rt"), link); err != nil {
		t.Fatal(err)
	}
	r, _, err := OpenRunsDir(filepath.Join(link, "runs"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if fi, err := os.Stat(open); err != nil || fi.Mode()&fs.ModeSticky == 0 {
		t.Errorf("%s, around the runs root's real path: %v, %v; want it sticky", open, fi.Mode(), err)
	}
}

// An ancestor named through a link to an open directory (RUNTIME_DIRECTORY=/var/run/x with
// /var/run a link to /run, say): the directory is made sticky on its real path, never
// through the link (which could be swapped for another after it was looked at), and the
// agent starts, under runAs too.
func TestRunsRootBehindALinkToAnOpenDirectory(t *testing.T) {
	base := t.TempDir()
	for d := base; d != os.TempDir(); d = filepath.Dir(d) { // t.TempDir's: for other uids to pass
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	open := openDir(t, filepath.Join(base, "open"), 0o777)
	link := filepath.Join(base, "link")
	if err := os.Symlink(open, link); err != nil {
		t.Fatal(err)
	}
	r, _, err := OpenRunsDir(filepath.Join(link, "runs"), true)
	if err != nil {
		t.Fatalf("runs root behind a link to an open directory, for runAs: %v", err)
	}
	defer r.Close()
	if fi, err := os.Stat(open); err != nil || fi.Mode()&fs.ModeSticky == 0 {
		t.Errorf("%s: %v, %v; want it sticky", open, fi.Mode(), err)
	}
}

// Under runAs each run's uid must pass through every directory above its run's: a runtime
// directory of mode 0700 (systemd's RuntimeDirectoryMode=0700) would leave every run
// unable to read its own run file. The agent refuses to start, naming it.
func TestRunsRootUnderAClosedDirectoryIsRefusedForRunAs(t *testing.T) {
	closed := openDir(t, filepath.Join(t.TempDir(), "rt"), 0o700)
	root := filepath.Join(closed, "port-runner")
	if _, _, err := OpenRunsDir(root, true); err == nil || !strings.Contains(err.Error(), closed) {
		t.Fatalf("runs root under a 0700 directory, for runs of other uids: %v; want an error naming %s", err, closed)
	}
	r, _, err := OpenRunsDir(root, false)
	if err != nil {
		t.Fatalf("for runs of the agent's uid, a 0700 parent is fine: %v", err)
	}
	r.Close()
}

// Under runAs the runs' uids share /dev/shm (POSIX shared memory, which a sandboxed command
// uses by name) and /tmp; the chart's are emptyDirs, 0777 and not sticky, where one run's
// uid could rename another's semaphore or shared memory away and put its own, readable by
// it, under the same name for the other run's processes to open. The agent makes them
// sticky: then only a file's owner may rename or remove it.
func TestDirectoriesRunsShareAreMadeStickyForRunAs(t *testing.T) {
	shm := openDir(t, filepath.Join(t.TempDir(), "shm"), 0o777)
	defer func(was []string) { sharedDirs = was }(sharedDirs)
	sharedDirs = []string{shm, filepath.Join(t.TempDir(), "absent")}
	for _, traversable := range []bool{false, true} {
		root := filepath.Join(t.TempDir(), "runs")
		if traversable {
			for d := filepath.Dir(root); d != os.TempDir(); d = filepath.Dir(d) { // for the runs' uids to pass
				if err := os.Chmod(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
		}
		r, _, err := OpenRunsDir(root, traversable)
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
		fi, err := os.Stat(shm)
		if err != nil {
			t.Fatal(err)
		}
		if sticky := fi.Mode()&fs.ModeSticky != 0; sticky != traversable {
			t.Errorf("runs of other uids: %v; the directory they share is sticky: %v", traversable, sticky)
		}
	}
}

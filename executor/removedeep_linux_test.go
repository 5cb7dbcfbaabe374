package executor

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// nestDirs makes depth directories, each in the one before, under dir: what a command can
// make in its run directory with mkdir and chdir (no path is ever longer than one name).
func nestDirs(t *testing.T, dir string, depth int) {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	for range depth {
		if err := unix.Mkdirat(fd, "d", 0o700); err != nil {
			t.Fatal(err)
		}
		next, err := unix.Openat(fd, "d", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		unix.Close(fd)
		fd = next
	}
	unix.Close(fd)
}

// Removing a run directory, or clearing a sandboxed run's for the next run, holds a bounded
// number of the agent's open files and stack frames however deep the command nested
// directories there: os.RemoveAll holds one of each per level, so a tree as deep as the
// agent's open-file limit took them all (every other open of the agent failing meanwhile),
// and one a million deep, where the limit allows it, a goroutine stack past Go's 1 GB bound,
// a fatal error.
func TestRemovingADeepTreeHoldsFewFiles(t *testing.T) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	if rl.Cur > 4096 {
		// Lowered for the test (no test of the package runs beside it): a shallower tree
		// is as deep as the limit, and quicker to make and remove.
		low := rl
		low.Cur = 4096
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl) })
	}
	depth := 4096 + 1000 // deeper than the open-file limit
	t.Run("removed", func(t *testing.T) {
		dir := madeRunDir(t)
		nestDirs(t, filepath.Join(dir, "tmpdir"), depth)
		watchFDs(t, depth, func() error { return RemoveRunDir(dir, "response.json") })
		if _, err := os.Lstat(dir); !os.IsNotExist(err) {
			t.Fatalf("run directory still there: %v", err)
		}
	})
	t.Run("cleared", func(t *testing.T) {
		runs, _, err := OpenRunsDir(t.TempDir(), false)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = runs.Close() })
		dir, err := runs.NewRunDir()
		if err != nil {
			t.Fatal(err)
		}
		mustOK(t, runs.cellOf(dir).identify())
		runs.served(dir) // as a sandboxed run whose shim ended by itself
		mustOK(t, os.Mkdir(filepath.Join(dir, "left"), 0o700))
		nestDirs(t, filepath.Join(dir, "left"), depth)
		watchFDs(t, depth, func() error { return runs.ReleaseRunDir(dir) })
		if names, err := os.ReadDir(dir); err != nil || len(names) > 0 {
			t.Fatalf("the cell after its run: %d entries, %v; want it kept, empty", len(names), err)
		}
	})
}

// watchFDs runs remove, which removes depth levels, and fails t if this process (the
// agent) held more than twice maxUnlockDepth more open files meanwhile.
func watchFDs(t *testing.T, depth int, remove func() error) {
	t.Helper()
	base := countFDs(t)
	done := make(chan error, 1)
	go func() { done <- remove() }()
	// Polled a millisecond apart: a removal that holds one per level holds thousands for
	// hundreds of milliseconds.
	most := 0
	for watching := true; watching; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			watching = false
		case <-time.After(time.Millisecond):
			most = max(most, countFDs(t)-base)
		}
	}
	t.Logf("%d levels: at most %d more open files seen", depth, most)
	if most > 2*maxUnlockDepth {
		t.Fatalf("removing %d levels held %d open files, want at most %d", depth, most, 2*maxUnlockDepth)
	}
}

func countFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0 // out of open files this moment: the peak is seen otherwise
	}
	return len(fds)
}

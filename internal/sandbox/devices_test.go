package sandbox

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestLayoutAllowsNoRawStorageOrMemory: the device files a sandboxed command may read and
// write never include a block device (a disk holds every file's bytes, the private paths'
// among them: a command that can open it reads them, as root or in the disk's group) nor
// /dev/mem, /dev/kmem or /dev/port, whether the runs root lies under /dev (its entries
// are listed) or elsewhere (/dev itself is an entry of /).
func TestLayoutAllowsNoRawStorageOrMemory(t *testing.T) {
	blocks := blockDevices(t)
	if len(blocks) == 0 {
		t.Skip("no block device under /dev on this machine")
	}
	for _, private := range []string{"/dev/shm/port-runner-test/runs", filepath.Join(t.TempDir(), "runs")} {
		l, err := NewLayout([]string{private})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range l.DevFiles {
			if fi, err := os.Stat(p); err == nil && fi.Mode()&fs.ModeDevice != 0 && fi.Mode()&fs.ModeCharDevice == 0 {
				t.Errorf("private %s: the layout allows the block device %s", private, p)
			}
			if p == "/dev/mem" || p == "/dev/kmem" || p == "/dev/port" {
				t.Errorf("private %s: the layout allows %s", private, p)
			}
		}
		for _, b := range blocks {
			for _, d := range l.DevDirs {
				if b == d || strings.HasPrefix(b, d+"/") {
					t.Errorf("private %s: the layout allows %s, which holds the block device %s", private, d, b)
				}
			}
		}
		if len(l.DevFiles)+len(l.DevDirs) == 0 {
			t.Errorf("private %s: the layout allows no device at all", private)
		}
	}
}

// blockDevices lists the block devices under /dev, links not followed.
func blockDevices(t *testing.T) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir("/dev", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if p == "/dev/shm" && d.IsDir() {
			return filepath.SkipDir
		}
		if d.Type()&fs.ModeDevice != 0 && d.Type()&fs.ModeCharDevice == 0 {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TestLayoutNeverAllowsSharedMemory: /dev/shm is a world-writable directory shared by every
// process of the machine (every run of the agent's uid among them), like /tmp, whose names a
// command learns even unlisted (inotify). It is no rule of the layout wherever the runs root
// is: an action that needs it (Python's multiprocessing, Ansible) is given it by its
// sandbox.write.
func TestLayoutNeverAllowsSharedMemory(t *testing.T) {
	fi, err := os.Stat(shmDir)
	if err != nil || !fi.IsDir() {
		t.Skipf("no %s here", shmDir)
	}
	for _, private := range []string{filepath.Join(shmDir, "port-runner-test/runs"), filepath.Join(t.TempDir(), "runs")} {
		l, err := NewLayout([]string{private})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range slices.Concat(l.Dirs, l.Files, l.DevDirs, l.DevFiles) {
			if p == shmDir || strings.HasPrefix(p, shmDir+"/") {
				t.Errorf("private %s: the layout allows %s", private, p)
			}
		}
	}
}

const shmDir = "/dev/shm"

// TestLayoutAllowsNothingBesideTheRunsRootInADeviceDirectoryAnyUIDWritesIn: the runs root
// in a /dev/shm that is world-writable without the sticky bit (a Kubernetes emptyDir, the
// chart's) made the other entries there device files a command could read and write: what
// another process, or a run without the sandbox, left there.
func TestLayoutAllowsNothingBesideTheRunsRootInADeviceDirectoryAnyUIDWritesIn(t *testing.T) {
	dir, err := os.MkdirTemp(shmDir, "port-runner-test-")
	if err != nil {
		t.Skipf("cannot make a directory in %s: %v", shmDir, err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "sem.left-by-another")
	if err := os.WriteFile(other, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	l, err := NewLayout([]string{filepath.Join(dir, "runs")})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range slices.Concat(l.Dirs, l.Files, l.DevDirs, l.DevFiles) {
		if p == other {
			t.Errorf("the layout allows %s, beside the runs root in the world-writable %s", p, dir)
		}
	}
}

// TestLayoutKeepsTheOrdinaryDevices: listing /dev to leave out raw storage and shared
// directories keeps what an ordinary command opens (its null, random, terminal and pty
// devices) allowed, wherever the runs root is; a link (/dev/ptmx in a container) by its
// target, which is where Landlock checks it.
func TestLayoutKeepsTheOrdinaryDevices(t *testing.T) {
	for _, private := range []string{"/dev/shm/port-runner-test/runs", filepath.Join(t.TempDir(), "runs")} {
		l, err := NewLayout([]string{private})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/ptmx", "/dev/pts"} {
			real, err := filepath.EvalSymlinks(p)
			if err != nil {
				continue // not on this machine
			}
			allowed := slices.Contains(l.DevFiles, real)
			for _, d := range l.DevDirs {
				allowed = allowed || real == d || strings.HasPrefix(real, d+"/")
			}
			if !allowed {
				t.Errorf("private %s: the layout does not allow %s (%s)", private, p, real)
			}
		}
	}
}

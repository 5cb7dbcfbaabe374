package sandbox

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// TestDeviceDirectoryHoldingASharedOneIsListed: a /dev without block devices (a
// container's) was allowed whole, and with it the /dev/shm it holds. A directory holding a
// shared one is listed instead, its other entries allowed one by one.
func TestDeviceDirectoryHoldingASharedOneIsListed(t *testing.T) {
	dev, shm, pts := fakeDev(t, 0o777|os.ModeSticky)
	null := filepath.Join(dev, "null")
	if err := os.WriteFile(null, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	l := addFakeDev(t, dev)
	if got := slices.Concat(l.DevDirs, l.DevFiles); slices.Contains(got, dev) || slices.Contains(got, shm) ||
		!slices.Contains(l.DevDirs, pts) || !slices.Contains(l.DevFiles, null) {
		t.Fatalf("allowed %q; want %s and %s, neither %s nor %s", got, pts, null, dev, shm)
	}
}

// TestDeviceDirectoryAnyUIDWritesInIsNotAllowed: /dev/shm is world-writable without the
// sticky bit when it is a Kubernetes emptyDir (the chart mounts one there), and as shared
// as a sticky one: it is left out too, and the /dev holding it listed.
func TestDeviceDirectoryAnyUIDWritesInIsNotAllowed(t *testing.T) {
	dev, shm, pts := fakeDev(t, 0o777)
	l := addFakeDev(t, dev)
	if got := slices.Concat(l.DevDirs, l.DevFiles); slices.Contains(got, dev) || slices.Contains(got, shm) ||
		!slices.Contains(l.DevDirs, pts) {
		t.Fatalf("allowed %q; want %s, neither %s nor %s", got, pts, dev, shm)
	}
}

// TestDeviceDirectoryHoldingABlockDeviceIsListed: wherever a block device lies under /dev,
// at the top or deeper (an LVM volume group's directory), it is not allowed, nor a
// directory holding it; the rest is. On any machine, not only one whose /dev has a disk.
func TestDeviceDirectoryHoldingABlockDeviceIsListed(t *testing.T) {
	dev, _, pts := fakeDev(t, 0o755)
	vg := filepath.Join(dev, "vg0")
	if err := os.Mkdir(vg, 0o755); err != nil {
		t.Fatal(err)
	}
	disk, lv, null := filepath.Join(dev, "loop7"), filepath.Join(vg, "data"), filepath.Join(vg, "null")
	for _, p := range []string{disk, lv} {
		if err := unix.Mknod(p, unix.S_IFBLK|0o600, int(unix.Mkdev(7, 200))); err != nil {
			t.Skipf("cannot make a block device: %v", err)
		}
	}
	if err := os.WriteFile(null, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	l := addFakeDev(t, dev)
	got := slices.Concat(l.DevDirs, l.DevFiles)
	for _, p := range []string{dev, vg, disk, lv} {
		if slices.Contains(got, p) {
			t.Errorf("allowed %s: %q", p, got)
		}
	}
	if !slices.Contains(l.DevDirs, pts) || !slices.Contains(l.DevFiles, null) {
		t.Errorf("allowed %q; want %s and %s among them", got, pts, null)
	}
}

// fakeDev is a directory holding a pts directory and a shm one of mode shmMode.
func fakeDev(t *testing.T, shmMode os.FileMode) (dev, shm, pts string) {
	t.Helper()
	dev = t.TempDir()
	shm, pts = filepath.Join(dev, "shm"), filepath.Join(dev, "pts")
	for _, d := range []string{shm, pts} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(shm, shmMode); err != nil {
		t.Fatal(err)
	}
	return dev, shm, pts
}

// addFakeDev is a layout that allows dev as it would /dev.
func addFakeDev(t *testing.T, dev string) *Layout {
	t.Helper()
	l := &Layout{private: []string{"/nowhere/runs"}}
	fi, err := os.Stat(dev)
	if err != nil {
		t.Fatal(err)
	}
	l.addDevice(dev, fi, 0)
	return l
}

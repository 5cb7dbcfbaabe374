package sandbox

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestDeviceDirectoryHoldingASharedOneIsListed: a /dev without block devices (a
// container's) was allowed whole, and with it the /dev/shm it holds. A directory holding a
// shared one is listed instead, its other entries allowed one by one.
func TestDeviceDirectoryHoldingASharedOneIsListed(t *testing.T) {
	dev := t.TempDir()
	shm := filepath.Join(dev, "shm")
	pts := filepath.Join(dev, "pts")
	for _, d := range []string{shm, pts} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(shm, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	null := filepath.Join(dev, "null")
	if err := os.WriteFile(null, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	l := &Layout{private: []string{"/nowhere/runs"}}
	fi, err := os.Stat(dev)
	if err != nil {
		t.Fatal(err)
	}
	l.addDevice(dev, fi, 0)
	if got := slices.Concat(l.DevDirs, l.DevFiles); slices.Contains(got, dev) || slices.Contains(got, shm) ||
		!slices.Contains(l.DevDirs, pts) || !slices.Contains(l.DevFiles, null) {
		t.Fatalf("allowed %q; want %s and %s, neither %s nor %s", got, pts, null, dev, shm)
	}
}

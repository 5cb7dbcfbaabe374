package executor

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRunDirRoot: run directories go to the service's runtime directory when systemd (or
// the chart) names one ($RUNTIME_DIRECTORY, the first of a list): a memory tmpfs of its own,
// which leaves /dev/shm to the commands' shared memory; else under $TMPDIR, else /dev/shm,
// else the system's temp dir.
func TestRunDirRoot(t *testing.T) {
	t.Setenv("RUNTIME_DIRECTORY", "")
	runtimeDir := t.TempDir()
	t.Setenv("TMPDIR", t.TempDir())
	for _, env := range []string{runtimeDir, runtimeDir + ":/run/other"} {
		t.Setenv("RUNTIME_DIRECTORY", env)
		if got := RunDirRoot(); got != runtimeDir {
			t.Fatalf("RunDirRoot with RUNTIME_DIRECTORY=%s: %s, want %s", env, got, runtimeDir)
		}
	}
	t.Setenv("RUNTIME_DIRECTORY", "relative/dir") // not systemd's: ignored
	own := t.TempDir()
	t.Setenv("TMPDIR", own)
	if got := RunDirRoot(); got != own {
		t.Fatalf("RunDirRoot with TMPDIR=%s: %s", own, got)
	}
	t.Setenv("TMPDIR", "")
	want := os.TempDir()
	if fi, err := os.Stat(shmDir); err == nil && fi.IsDir() {
		want = shmDir
	}
	got := RunDirRoot()
	if got != want {
		t.Fatalf("RunDirRoot without TMPDIR: %s, want %s", got, want)
	}
	dir, file, err := writeRunFile(Spec{RunFile: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if filepath.Dir(dir) != filepath.Clean(got) || filepath.Dir(file) != dir {
		t.Fatalf("run file %s in %s, want a directory under %s", file, dir, got)
	}
}

package executor

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRunDirRoot(t *testing.T) {
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

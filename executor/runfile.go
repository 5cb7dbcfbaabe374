package executor

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// runFileName is PORT_RUN_FILE's name inside its run's directory.
const runFileName = "run.json"

// shmDir is Linux's (and containers') memory-backed tmpfs.
const shmDir = "/dev/shm"

// RunDirRoot is where per-run directories go: $TMPDIR when the user set it, else /dev/shm
// when it is a writable directory, else the system's temp dir. Creating and removing a
// run's directory on tmpfs costs a few microseconds; on a disk-backed /tmp it was the largest
// part of the agent's own CPU per run (BENCHMARKS.md, "agent CPU per run").
func RunDirRoot() string {
	if os.Getenv("TMPDIR") != "" {
		return os.TempDir()
	}
	if fi, err := os.Stat(shmDir); err == nil && fi.IsDir() && syscall.Access(shmDir, 2 /* W_OK */) == nil {
		return shmDir
	}
	return os.TempDir()
}

// writeRunFile writes the run context into a new per-run directory and
// returns both paths; the caller removes the directory (with whatever the
// command left in it) when the run ends.
func writeRunFile(data []byte) (dir, file string, err error) {
	// MkdirTemp makes a new directory, mode 0700: private to the agent's
	// user, and never an existing one.
	dir, err = os.MkdirTemp(RunDirRoot(), "port-run-*")
	if err != nil {
		return "", "", fmt.Errorf("run file: %w", err)
	}
	file = filepath.Join(dir, runFileName)
	if err := os.WriteFile(file, data, 0o600); err != nil {
		os.RemoveAll(dir)
		return "", "", fmt.Errorf("run file: %w", err)
	}
	return dir, file, nil
}

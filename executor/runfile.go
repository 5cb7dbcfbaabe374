package executor

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// writeRunFile writes the run context into the run's directory, made here unless the
// caller made it, and returns both paths; the directory's maker removes it (with whatever
// the command left in it) when the run ends.
func writeRunFile(spec Spec) (dir, file string, err error) {
	dir = spec.RunDir
	switch {
	case dir != "":
	case spec.Isolation.Runs != nil:
		dir, err = spec.Isolation.Runs.NewRunDir()
	default:
		// A new directory, mode 0700: private to the agent's user, and never an existing one.
		dir, err = os.MkdirTemp(RunDirRoot(), "port-run-*")
	}
	if err != nil {
		return "", "", fmt.Errorf("run file: %w", err)
	}
	file = filepath.Join(dir, runFileName)
	if err := os.WriteFile(file, spec.RunFile, 0o600); err != nil {
		if spec.RunDir == "" {
			os.RemoveAll(dir)
		}
		return "", "", fmt.Errorf("run file: %w", err)
	}
	return dir, file, nil
}

// runHome gives a confined command a HOME and a TMPDIR of its own in its run directory
// (the agent's are not its to write), unless the action's env names its own.
func runHome(env []string, runDir string, own map[string]string) ([]string, error) {
	for _, v := range []string{"HOME", "TMPDIR"} {
		if _, set := own[v]; set {
			continue
		}
		dir := filepath.Join(runDir, strings.ToLower(v))
		if err := os.Mkdir(dir, 0o700); err != nil {
			return nil, fmt.Errorf("run directory: %w", err)
		}
		env = setEnv(env, v, dir)
	}
	return env, nil
}

// setEnv sets key in env, in place when it is there.
func setEnv(env []string, key, value string) []string {
	for i, kv := range env {
		if strings.HasPrefix(kv, key+"=") {
			env[i] = key + "=" + value
			return env
		}
	}
	return append(env, key+"="+value)
}

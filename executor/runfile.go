package executor

import (
	"fmt"
	"os"
	"path/filepath"
)

// runFileName is PORT_RUN_FILE's name inside its run's directory.
const runFileName = "run.json"

// writeRunFile writes the run context into a new per-run directory and
// returns both paths; the caller removes the directory (with whatever the
// command left in it) when the run ends.
func writeRunFile(data []byte) (dir, file string, err error) {
	// MkdirTemp makes a new directory, mode 0700: private to the agent's
	// user, and never an existing one.
	dir, err = os.MkdirTemp("", "port-run-*")
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

package executor

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRunsDirSweepsWhatDeadAgentsLeft: an agent's directory that no live agent holds (its
// agent crashed, its run files with decrypted inputs still there) is removed when the next
// agent of the uid starts; a live agent's stays, and so does anything not an agent's.
func TestRunsDirSweepsWhatDeadAgentsLeft(t *testing.T) {
	root := filepath.Join(t.TempDir(), "runs")
	live, swept, err := OpenRunsDir(root, false)
	if err != nil || swept != 0 {
		t.Fatalf("first agent: %v, swept %d", err, swept)
	}
	defer live.Close()
	liveRun, err := live.NewRunDir()
	if err != nil {
		t.Fatal(err)
	}
	dead := filepath.Join(root, agentPrefix+"crashed")
	if err := os.MkdirAll(filepath.Join(dead, "run-1"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dead, "run-1", runFileName), []byte(`{"secret":"decrypted"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(root, "not-an-agent")
	if err := os.Mkdir(other, 0o700); err != nil {
		t.Fatal(err)
	}

	next, swept, err := OpenRunsDir(root, false)
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	if swept != 1 {
		t.Errorf("swept %d agents' directories, want 1 (the crashed one)", swept)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("the crashed agent's directory is still there: %v", err)
	}
	for _, keep := range []string{liveRun, other} {
		if _, err := os.Stat(keep); err != nil {
			t.Errorf("%s was removed: %v", keep, err)
		}
	}
	if fi, err := os.Stat(root); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("runs root: %v %v, want mode 0700", fi.Mode(), err)
	}
}

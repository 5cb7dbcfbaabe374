package executor

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// TestRunsDirSweepsWhatDeadAgentsLeft: an agent's directory that no live agent holds (its
// agent crashed, its run files with decrypted inputs still there) is removed when the next
// agent of the uid starts; a live agent's stays, and so does anything not an agent's.
func TestRunsDirSweepsWhatDeadAgentsLeft(t *testing.T) {
	root := filepath.Join(t.TempDir(), "runs")
	live, swept, err := OpenRunsDir(root, false)
	if err != nil || swept.Removed != 0 || swept.Reason != nil {
		t.Fatalf("first agent: %v, swept %+v", err, swept)
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
	if swept.Removed != 1 || swept.Reason != nil || len(swept.Left) != 0 {
		t.Errorf("swept %+v, want 1 agent's directory removed (the crashed one), none left", swept)
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

// TestRunsDirSaysWhichDeadAgentsDirectoriesStayed: a dead agent's directory the sweep
// cannot remove (a file in it immutable, which not even root unlinks) is named in what
// OpenRunsDir returns, with the reason, and the agent starts all the same.
func TestRunsDirSaysWhichDeadAgentsDirectoriesStayed(t *testing.T) {
	if _, err := exec.LookPath("chattr"); err != nil {
		t.Skip("not checked: chattr (e2fsprogs) is not installed")
	}
	root := filepath.Join(t.TempDir(), "runs")
	stuck := filepath.Join(root, agentPrefix+"crashed", "run-1", "name-of-the-commands")
	if err := os.MkdirAll(filepath.Dir(stuck), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stuck, []byte(`{"secret":"decrypted"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chattr", "+i", stuck).CombinedOutput(); err != nil {
		t.Skipf("not checked: chattr +i is not allowed here (CAP_LINUX_IMMUTABLE, a file system that keeps the flag): %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("chattr", "-i", stuck).Run() }) // before the TempDir goes
	gone := filepath.Join(root, agentPrefix+"stopped")
	if err := os.Mkdir(gone, 0o700); err != nil {
		t.Fatal(err)
	}

	runs, swept, err := OpenRunsDir(root, false)
	if err != nil {
		t.Fatal(err)
	}
	defer runs.Close()
	if swept.Removed != 1 || !slices.Equal(swept.Left, []string{agentPrefix + "crashed"}) {
		t.Errorf("swept %+v, want the stopped agent's directory removed and the crashed one's left", swept)
	}
	if !errors.Is(swept.Reason, fs.ErrPermission) {
		t.Errorf("reason %v, want the unlink's EPERM", swept.Reason)
	}
	if _, err := os.Stat(gone); !os.IsNotExist(err) {
		t.Errorf("the stopped agent's directory is still there: %v", err)
	}
}

// TestRunsRootInAnOpenDirectoryIsMadeSticky: Kubernetes makes an emptyDir (the chart's
// /dev/shm, where the runs root goes by default) 0777 and not sticky, so any uid, a run's
// under runAs among them, could rename the runs root away and put a directory of its own in
// its place, where the agent would make the next runs' directories and files. The agent
// makes such a parent sticky: then only the runs root's owner may rename or remove it.
func TestRunsRootInAnOpenDirectoryIsMadeSticky(t *testing.T) {
	open := filepath.Join(t.TempDir(), "shm")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil { // past the umask
		t.Fatal(err)
	}
	for d := filepath.Dir(open); d != os.TempDir(); d = filepath.Dir(d) { // t.TempDir's: for another uid to pass
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	root := filepath.Join(open, "runs")
	r, swept, err := OpenRunsDir(root, true)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if fi, err := os.Stat(open); err != nil || fi.Mode()&fs.ModeSticky == 0 {
		t.Fatalf("the runs root's parent: %v, %v; want it sticky", fi.Mode(), err)
	}
	if !slices.Contains(swept.Sticky, open) { // the agent logs them: some may not be its own
		t.Errorf("made sticky, as reported: %q; want %q", swept.Sticky, open)
	}
	if os.Geteuid() != 0 {
		return
	}
	mv := exec.Command("mv", root, filepath.Join(open, "gone"))
	mv.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if out, err := mv.CombinedOutput(); err == nil {
		t.Fatalf("another uid renamed the runs root away: %s", out)
	}
}

package sandbox

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestLayoutAllowsNothingInASharedDirectory: a run directory in a world-writable sticky
// directory (/dev/shm, /tmp: the default places) makes it an ancestor whose entries the
// layout would allow one rule each. On a busy machine that is thousands of rules, whose
// cost every run pays (a microsecond or more of the agent's CPU each), and each entry of
// such a directory belongs to whoever made it. The layout allows none of them, whoever
// owns them, and the entries of ordinary ancestors as before.
//
// Sticky or not: Kubernetes makes an emptyDir (a pod's /tmp) 0777 without the sticky bit,
// where any uid may rename and replace entries too.
func TestLayoutAllowsNothingInASharedDirectory(t *testing.T) {
	for _, mode := range []os.FileMode{0o777 | os.ModeSticky, 0o777} {
		t.Run(mode.String(), func(t *testing.T) { layoutAllowsNothingIn(t, mode) })
	}
}

func layoutAllowsNothingIn(t *testing.T, mode os.FileMode) {
	base := t.TempDir()
	shared := filepath.Join(base, "shm")
	if err := os.Mkdir(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, mode); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"someone-else", "a-cache"} {
		if err := os.Mkdir(filepath.Join(shared, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(shared, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	beside := filepath.Join(base, "tools")
	if err := os.Mkdir(beside, 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := NewLayout([]string{filepath.Join(shared, "port-runner-runs")})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range append(append([]string{}, l.Dirs...), l.Files...) {
		if filepath.Dir(p) == shared {
			t.Errorf("the layout allows %s, an entry of the shared directory", p)
		}
	}
	if !slices.Contains(l.Dirs, beside) {
		t.Errorf("the layout does not allow %s, beside an ordinary ancestor: %q", beside, l.Dirs)
	}
}

// TestLayoutKeepsOutAPrivatePathNotYetMadeBehindALink: the agent builds its layout before
// it makes the runs root (port-runner-<uid> under RUNTIME_DIRECTORY, which systemd makes
// anew at each start), and executor.runsDir may name it through a link (/var/run is one to
// /run). The link's target is then the real place of the runs root: it must not be allowed
// as an entry beside the link.
func TestLayoutKeepsOutAPrivatePathNotYetMadeBehindALink(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "run")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, filepath.Join(base, "var-run")); err != nil {
		t.Fatal(err)
	}
	l, err := NewLayout([]string{filepath.Join(base, "var-run", "port-runner", "port-runner-0")})
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(real, "port-runner", "port-runner-0")
	if !slices.Contains(l.Private(), want) {
		t.Errorf("private %v: lacks the real path %s", l.Private(), want)
	}
	for _, p := range append(l.Dirs, l.Files...) {
		if p == real || p == filepath.Join(base, "var-run") {
			t.Errorf("the layout allows %s, which will hold the runs root", p)
		}
	}
}

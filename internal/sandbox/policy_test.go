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
func TestLayoutAllowsNothingInASharedDirectory(t *testing.T) {
	base := t.TempDir()
	shared := filepath.Join(base, "shm")
	if err := os.Mkdir(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o1777|os.ModeSticky); err != nil {
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

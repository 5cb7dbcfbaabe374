package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A run file is read only as a regular file: a named pipe the command left in its place
// does not block the read (it blocked os.Open forever, and the run's closing and the
// agent's shutdown with it), a symbolic link is not followed to the file it names, and a
// hard link, a name of a file that has others, is not read.
func TestRunFileOnlyARegularFile(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "agent-only")
	if err := os.WriteFile(secret, []byte(`{"secret":"of the agent"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	path := func(name string) string { return filepath.Join(dir, name) }
	if err := syscall.Mkfifo(path("fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, path("link")); err != nil {
		t.Fatal(err)
	}
	// Where fs.protected_hardlinks is 0, a command under runAs with the sandbox off can link
	// any file of its directory's file system into its run file, one the agent alone reads.
	if err := os.Link(secret, path("hard")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path("dir"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path("regular"), []byte(`{"ok":true}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path("big"), make([]byte, maxRunFileBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, want string // want: the label's reason; "" reads fine
		refused    bool   // fails the run (errBadRunFile)
	}{
		{"fifo", "a named pipe, not a regular file", true},
		{"link", "a symbolic link, not a regular file", true},
		{"dir", "a directory, not a regular file", true},
		{"hard", "a hard link (2 names), not a file of the run's own", true},
		{"regular", "", false},
		{"missing", "", false},
		{"big", "over 524288 bytes", false},
	} {
		type result struct {
			b   []byte
			err error
		}
		got := make(chan result, 1)
		go func() { b, err := readRunFile(path(tc.name)); got <- result{b, err} }()
		var r result
		select {
		case r = <-got:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: reading it has not returned after 10s", tc.name)
		}
		var bad errBadRunFile
		switch {
		case errors.As(r.err, &bad) != tc.refused:
			t.Errorf("%s: %v, want refused=%v", tc.name, r.err, tc.refused)
		case tc.want == "" && r.err != nil:
			t.Errorf("%s: %v", tc.name, r.err)
		case tc.want != "" && (r.err == nil || r.err.Error() != tc.want):
			t.Errorf("%s: %v, want %q", tc.name, r.err, tc.want)
		case strings.Contains(string(r.b), "of the agent"):
			t.Errorf("%s: read the file a link names", tc.name)
		}
	}
}

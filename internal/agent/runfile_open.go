package agent

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"
)

// runFileReadTimeout bounds reading a run file. A regular file's read returns (it is what
// the open lets through); the deadline is checked between reads, so no closing waits long on
// a slow filesystem under $TMPDIR.
const runFileReadTimeout = 5 * time.Second

// errBadRunFile is a run file the agent refuses to read (not a regular file, or one it
// cannot read in time): the run fails with a label that says why, "$FILE is " + why
// (README "What a command sees").
type errBadRunFile struct{ why string }

func (e errBadRunFile) Error() string { return e.why }

// readRunFile returns the file's bytes, at most maxRunFileBytes; a file the command did not
// write is nil, not an error. The command controls what is at path: it is opened without
// following a symbolic link (which could name any file the agent may read) and without
// blocking (a named pipe's open waits for a writer forever: the run's closing, and the
// agent's shutdown behind it, with it), and read only if it is a regular file.
func readRunFile(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	fh, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case errors.Is(err, syscall.ELOOP):
		return nil, errBadRunFile{"a symbolic link, not a regular file"}
	case err != nil:
		return nil, errBadRunFile{fmt.Sprintf("unreadable: %v", cause(err))}
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, errBadRunFile{fmt.Sprintf("unreadable: %v", cause(err))}
	}
	if !st.Mode().IsRegular() {
		return nil, errBadRunFile{fileKind(st.Mode()) + ", not a regular file"}
	}
	// A hard link to it, made by the command, is not the command's file: where
	// fs.protected_hardlinks is 0, a command under runAs with the sandbox off could link
	// there a file only the agent reads (a credential file on the same file system), and
	// its uid would not show it: the agent reads it with its own rights.
	if n := links(st); n > 1 {
		return nil, errBadRunFile{fmt.Sprintf("a hard link (%d names), not a file of the run's own", n)}
	}
	if st.Size() > maxRunFileBytes {
		return nil, fmt.Errorf("over %d bytes", maxRunFileBytes)
	}
	return readBefore(fh, time.Now().Add(runFileReadTimeout))
}

// readBefore reads r to its end (at most maxRunFileBytes+1 bytes), in reads of 64 KiB,
// unless deadline passes first.
func readBefore(r io.Reader, deadline time.Time) ([]byte, error) {
	var b []byte
	buf := make([]byte, 64<<10)
	for len(b) <= maxRunFileBytes {
		if time.Now().After(deadline) {
			return nil, errBadRunFile{fmt.Sprintf("too slow: not read within %s", runFileReadTimeout)}
		}
		n, err := r.Read(buf)
		b = append(b, buf[:n]...)
		if errors.Is(err, io.EOF) {
			return b, nil
		}
		if err != nil {
			return nil, errBadRunFile{fmt.Sprintf("unreadable: %v", cause(err))}
		}
	}
	return nil, fmt.Errorf("over %d bytes", maxRunFileBytes) // it grew after the size check
}

// links is how many names the file has; 1 where the system does not say.
func links(st fs.FileInfo) uint64 {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return uint64(sys.Nlink)
	}
	return 1
}

// cause is what went wrong without the path (a *fs.PathError's Err).
func cause(err error) error {
	if u := errors.Unwrap(err); u != nil {
		return u
	}
	return err
}

// fileKind names a file type for a run's label.
func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m.IsDir():
		return "a directory"
	}
	return "a special file"
}

package executor

import (
	"bytes"
	"errors"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"
)

// cellIdentity is what a cell's directory was made as: its inode, and the extended
// attributes it got then (a security module's label, say), names and values.
type cellIdentity struct {
	dev, ino uint64
	xattrs   []byte
}

// identify reads dir's identity.
func identify(dir string) (cellIdentity, error) {
	fd, err := openCell(dir)
	if err != nil {
		return cellIdentity{}, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return cellIdentity{}, err
	}
	x, err := xattrsOf(fd)
	return cellIdentity{dev: st.Dev, ino: st.Ino, xattrs: x}, err
}

func openCell(dir string) (int, error) {
	return unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

// clear readies the cell for its next run: first its owner and mode the agent's again
// (under runAs the run owns it, and a run may chmod it), so that no other uid can add to it
// from then on; then what its run left removed, links never followed. false when it cannot
// be made so: it is not the directory it was made as, its extended attributes changed (an
// ACL the run set, say), or an error.
func (c *cell) clear(files []string, uid, gid int) bool {
	fd, err := openCell(c.dir)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Dev != c.id.dev || st.Ino != c.id.ino {
		return false
	}
	if int(st.Uid) != uid || int(st.Gid) != gid {
		if unix.Fchown(fd, uid, gid) != nil {
			return false
		}
	}
	if st.Mode&0o7777 != 0o700 {
		if unix.Fchmod(fd, 0o700) != nil {
			return false
		}
	}
	removeOwnAt(fd)
	names, err := dirNames(fd)
	if err != nil {
		return false
	}
	// The caller's files are removed only where the listing has them: most runs write none,
	// and an unlinkat of a name that is not there is a syscall for nothing.
	names = slices.DeleteFunc(names, func(name string) bool {
		return slices.Contains(files, name) && unix.Unlinkat(fd, name, 0) == nil
	})
	if len(names) > 0 {
		for _, name := range names {
			if removeTree(filepath.Join(c.dir, name)) != nil { // never follows a link; bounded however deep
				return false
			}
		}
		if _, err := unix.Seek(fd, 0, 0); err != nil {
			return false
		}
		if names, err = dirNames(fd); err != nil || len(names) > 0 {
			return false
		}
	}
	x, err := xattrsOf(fd)
	return err == nil && bytes.Equal(x, c.id.xattrs)
}

// removeOwnAt removes the entries the agent itself makes in every run directory (the run
// file, runHome's) from the directory open as fd: no path to build and walk again for each
// name. The caller's files are not among them (see clear).
func removeOwnAt(fd int) {
	eachKnown(nil, func(name string, isDir bool) {
		flags := 0
		if isDir {
			flags = unix.AT_REMOVEDIR
		}
		_ = unix.Unlinkat(fd, name, flags)
	})
}

// dirNames lists the directory open as fd from its offset, its start when just opened ("."
// and ".." left out).
func dirNames(fd int) ([]string, error) {
	var names []string
	var buf [1024]byte
	for {
		n, err := unix.Getdents(fd, buf[:])
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

// xattrsOf is the extended attributes of the file open as fd, names and values, in the
// order the file system lists them; nil where it has none or keeps none.
func xattrsOf(fd int) ([]byte, error) {
	var list [1024]byte
	n, err := unix.Flistxattr(fd, list[:])
	switch {
	case errors.Is(err, unix.ENOTSUP):
		return nil, nil
	case err != nil:
		return nil, err // ERANGE among them: more than a cell is ever given
	case n == 0:
		return nil, nil
	}
	var out []byte
	var val [1024]byte
	// Split by hand: bytes.SplitSeq's iterator would move list to the heap, on every call.
	for rest := bytes.TrimSuffix(list[:n], []byte{0}); rest != nil; {
		name := rest
		if i := bytes.IndexByte(rest, 0); i >= 0 {
			name, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		m, err := unix.Fgetxattr(fd, string(name), val[:])
		if err != nil {
			return nil, err
		}
		out = append(append(append(append(out, name...), 0), val[:m]...), 0)
	}
	return out, nil
}

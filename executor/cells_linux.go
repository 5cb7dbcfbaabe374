package executor

import (
	"errors"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// clear readies the cell for its next run: what its run left in it removed, its mode and
// owner the agent's again (under runAs the run owns it, and a run may chmod it). false when
// it cannot be made so: the run set extended attributes on it (ACLs among them), or an
// error. The run's processes are gone, and it never had a right on the directory holding
// the cell, so the cell's path still names the cell.
func (c *cell) clear(files []string, uid, gid int) bool {
	removeKnown(c.dir, files)
	fd, err := unix.Open(c.dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	names, err := dirNames(fd)
	if err != nil {
		return false
	}
	if len(names) > 0 {
		for _, name := range names {
			if os.RemoveAll(filepath.Join(c.dir, name)) != nil { // never follows a link
				return false
			}
		}
		if names, err = dirNames(fd); err != nil || len(names) > 0 {
			return false
		}
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
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
	n, err := unix.Flistxattr(fd, nil)
	return (err == nil && n == 0) || errors.Is(err, unix.ENOTSUP)
}

// dirNames lists the directory open as fd from its start ("." and ".." left out).
func dirNames(fd int) ([]string, error) {
	if _, err := unix.Seek(fd, 0, 0); err != nil {
		return nil, err
	}
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

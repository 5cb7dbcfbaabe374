package executor

import (
	"errors"
	"io/fs"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// maxUnlockDepth bounds how deep removeAll gives rights back: it holds one open file per
// level, and no tool leaves locked directories deeper than this.
const maxUnlockDepth = 128

// removeAll removes dir with what is in it, as os.RemoveAll does. A command may leave
// directories that its own uid can neither write nor search (Go's module cache is
// read-only; a script may chmod 000), and the agent, when it is not root, is that uid: then
// it gives its own directories under dir back their owner's rights and tries again.
func removeAll(dir string) error {
	err := os.RemoveAll(dir)
	if err == nil || !errors.Is(err, fs.ErrPermission) {
		return err
	}
	fd, oerr := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if oerr != nil {
		return err
	}
	unlockDir(fd, 0)
	unix.Close(fd)
	return os.RemoveAll(dir)
}

// unlockDir gives the directory open as fd (O_PATH) and every directory under it that the
// agent owns the rights their owner needs to empty them. Links are never followed: each
// directory is opened by name in its parent with O_NOFOLLOW and changed through that open
// file. Best effort: what it cannot change leaves os.RemoveAll's error as it was.
func unlockDir(fd, depth int) {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Uid != uint32(os.Geteuid()) {
		return
	}
	if st.Mode&0o700 != 0o700 {
		// fchmod refuses an O_PATH file; its /proc link names that very directory.
		if unix.Chmod("/proc/self/fd/"+strconv.Itoa(fd), st.Mode&0o7777|0o700) != nil {
			return
		}
	}
	if depth >= maxUnlockDepth {
		return
	}
	list, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	names, err := dirNames(list)
	unix.Close(list)
	if err != nil {
		return
	}
	for _, name := range names {
		sub, err := unix.Openat(fd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			continue // not a directory, or a link
		}
		unlockDir(sub, depth+1)
		unix.Close(sub)
	}
}

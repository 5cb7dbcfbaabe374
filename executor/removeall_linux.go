package executor

import (
	"errors"
	"io/fs"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// maxUnlockDepth bounds how deep removeAll gives rights back: it holds two open files per
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
// file. It holds two open files per level. Best effort: what it cannot change leaves
// os.RemoveAll's error as it was.
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
	lfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	list := os.NewFile(uintptr(lfd), ".")
	defer list.Close()
	for {
		// A chunk at a time: the command decides how many entries there are.
		entries, err := list.ReadDir(256)
		for _, e := range entries {
			if !e.IsDir() {
				continue // a file, a link (ReadDir never follows one): nothing to give back
			}
			sub, err := unix.Openat(fd, e.Name(), unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				continue // not a directory after all, or a link
			}
			unlockDir(sub, depth+1)
			unix.Close(sub)
		}
		if err != nil {
			return
		}
	}
}

package executor

import (
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

const (
	// maxUnlockDepth bounds how deep removeAll's walk goes below a directory it starts from
	// (one open file per level): deeper directories are moved up to the top of the directory
	// being removed and walked from there, so a command cannot hide a locked directory below
	// the walk's reach.
	maxUnlockDepth = 64
	// maxMoves bounds those moves in one removal (trees about 260,000 levels deep), so that
	// a process still running cannot keep the walk going by putting moved trees back down.
	maxMoves = 4096
)

// removeAll removes dir with what is in it, as os.RemoveAll does. A command may leave
// directories that its own uid can neither write nor search (Go's module cache is
// read-only; a script may chmod 000), and the agent, when it is not root, is that uid: then
// it gives its own directories under dir back their owner's rights and tries again.
func removeAll(dir string) error {
	err := os.RemoveAll(dir)
	// Refused (a directory locked up), or out of open files (a tree deeper than the limit:
	// os.RemoveAll holds one per level): nothing else is for the walk to mend.
	if err == nil || !errors.Is(err, fs.ErrPermission) && !errors.Is(err, unix.EMFILE) {
		return err
	}
	top, oerr := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if oerr != nil {
		return err
	}
	defer unix.Close(top)
	u := unlocker{top: top}
	u.walk(top, ".", 0)
	for len(u.moved) > 0 {
		name := u.moved[len(u.moved)-1]
		u.moved = u.moved[:len(u.moved)-1]
		u.walk(top, name, 1)
	}
	return os.RemoveAll(dir)
}

// unlocker gives directories back their owner's rights, never through a link: each is
// opened by name in its open parent with O_NOFOLLOW and changed through that open file.
// Best effort: what it cannot change leaves os.RemoveAll's error as it was.
type unlocker struct {
	top   int      // the directory removeAll removes (O_PATH)
	moved []string // directories moved up to top, still to walk
	moves int      // made so far, at most maxMoves
}

// walk unlocks directory name in parent and every directory under it.
func (u *unlocker) walk(parent int, name string, depth int) {
	fd, ok := unlockOpen(parent, name)
	if !ok {
		return
	}
	list := os.NewFile(uintptr(fd), name)
	defer list.Close()
	for {
		// A chunk at a time: the command decides how many entries there are.
		entries, err := list.ReadDir(256)
		for _, e := range entries {
			switch {
			case !e.IsDir(): // a file, a link (ReadDir never follows one): nothing to give back
			case depth+1 < maxUnlockDepth:
				u.walk(fd, e.Name(), depth+1)
			default:
				u.moveUp(fd, e.Name())
			}
		}
		if err != nil {
			return
		}
	}
}

// unlockOpen opens directory name in parent for reading, after giving it its owner's
// rights (rwx) when the agent owns it and it lacks them.
func unlockOpen(parent int, name string) (int, bool) {
	p, err := unix.Openat(parent, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, false // not a directory after all, or a link
	}
	defer unix.Close(p)
	var st unix.Stat_t
	if unix.Fstat(p, &st) != nil || st.Uid != uint32(os.Geteuid()) {
		return -1, false // another uid's: nothing the agent could give back there
	}
	if st.Mode&0o700 != 0o700 {
		// fchmod refuses an O_PATH file; its /proc link names that very directory.
		if unix.Chmod("/proc/self/fd/"+strconv.Itoa(p), st.Mode&0o7777|0o700) != nil {
			return -1, false
		}
	}
	fd, err := unix.Openat(p, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	return fd, err == nil
}

// moveUp moves directory name in parent to a name of its own in top, to be walked from
// there; renaming moves a link as it is, never what it names. The name is random: one the
// command could guess, it could take beforehand.
func (u *unlocker) moveUp(parent int, name string) {
	if u.moves >= maxMoves {
		return
	}
	u.moves++
	for range 4 { // a name taken after all: another one
		to := ".port-runner-deep-" + rand.Text()
		err := unix.Renameat2(parent, name, u.top, to, unix.RENAME_NOREPLACE)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
			// A file system or a seccomp profile without RENAME_NOREPLACE: a random name
			// is not there already.
			err = unix.Renameat(parent, name, u.top, to)
		}
		switch {
		case err == nil:
			u.moved = append(u.moved, to)
			return
		case !errors.Is(err, unix.EEXIST) && !errors.Is(err, unix.ENOTEMPTY):
			return
		}
	}
}

package executor

import (
	"cmp"
	"crypto/rand"
	"errors"
	"io"
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

// removeAll removes dir with what is in it, as os.RemoveAll does but in bounded open files
// and stack (removeTree). A command may leave directories that its own uid can neither
// write nor search (Go's module cache is read-only; a script may chmod 000), and the agent,
// when it is not root, is that uid: then it gives its own directories under dir back their
// owner's rights and tries again.
func removeAll(dir string) error {
	err := removeTree(dir)
	if err == nil || !errors.Is(err, fs.ErrPermission) {
		return err // refused (a directory locked up): nothing else is for the walk to mend
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
	return removeTree(dir)
}

// removeTree removes dir and what is in it, never through a link, holding at most
// maxUnlockDepth open files and as many levels of stack: os.RemoveAll holds one of each per
// level, and a command nests directories as deep as it likes (mkdir and chdir, a name at a
// time): as deep as the agent's open-file limit took every one of them while it ran, a
// million deep a goroutine stack past Go's 1 GB bound, a fatal error. Deeper directories are
// moved up into dir and removed from there. The error is the first met.
func removeTree(dir string) error {
	err := os.Remove(dir) // a file, a link or an empty directory: the common case, one call
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	top, oerr := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if oerr != nil {
		return oerr
	}
	r := remover{unlocker: unlocker{top: int(top.Fd())}}
	r.empty(top, 0, maxReadings+maxMoves) // each move up asks for one more reading of the top
	top.Close()
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return cmp.Or(r.err, err)
	}
	return r.err
}

// maxReadings bounds how often one directory is read while emptying it: twice does it,
// unless a process still running keeps filling it.
const maxReadings = 64

// remover empties directories for removeTree; err is the first failure.
type remover struct {
	unlocker
	err error
}

func (r *remover) fail(op string, err error) {
	if r.err == nil {
		r.err = &fs.PathError{Op: op, Path: "(in the run directory)", Err: err}
	}
}

// empty removes what directory d holds, depth levels below the top. Names are read a chunk
// at a time, and the directory read again from its start, at most readings times, until a
// reading removes nothing more: removing entries may reorder what is left to read
// (os.RemoveAll reopens for that).
func (r *remover) empty(d *os.File, depth, readings int) {
	for range readings {
		if _, err := d.Seek(0, io.SeekStart); err != nil {
			r.fail("seek", err)
			return
		}
		removed := false
		for {
			names, err := d.Readdirnames(256)
			for _, name := range names {
				removed = r.remove(int(d.Fd()), name, depth+1) || removed
			}
			if err != nil {
				break
			}
		}
		if !removed {
			return
		}
	}
}

// remove removes name in directory parent, depth levels below the top, or moves it up to
// the top to be removed from there; it reports whether name left parent.
func (r *remover) remove(parent int, name string, depth int) bool {
	err := unix.Unlinkat(parent, name, 0)
	switch {
	case err == nil || errors.Is(err, unix.ENOENT):
		return true
	case !errors.Is(err, unix.EISDIR):
		r.fail("unlink", err)
		return false
	case depth > maxUnlockDepth:
		n := len(r.moved)
		r.moveUp(parent, name)
		moved := len(r.moved) > n
		r.moved = r.moved[:n] // the top's next reading finds it
		return moved
	}
	fd, err := unix.Openat(parent, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		r.fail("open", err)
		return false
	}
	d := os.NewFile(uintptr(fd), name)
	r.empty(d, depth, maxReadings)
	d.Close()
	if err := unix.Unlinkat(parent, name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		r.fail("remove", err)
		return false
	}
	return true
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

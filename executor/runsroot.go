//go:build unix

package executor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// checkAncestors looks at every directory above root, along the path as named and along
// the real one (a RUNTIME_DIRECTORY or executor.runsDir may name it through a link).
//
// One writable by every uid and not sticky (Kubernetes makes an emptyDir so) is made
// sticky: in it any uid may rename or replace what it holds, and a run of another uid
// (runAs) could put a directory of its own in the runs root's place, where the agent would
// then make other runs' directories and files. Its other bits (a shared directory's setgid)
// stay. Without traversable (no runAs) the runs share the agent's uid anyway, and one the
// agent cannot make sticky is left as it is.
//
// With traversable, each must also let other uids through (o+x): a run's uid passes
// through all of them to its run's directory, and under a 0700 one (systemd's
// RuntimeDirectoryMode=0700) no run could read its own run file (README "What a command
// sees").
//
// sticky lists the directories it made sticky.
func checkAncestors(root string, traversable bool) (sticky []string, err error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	paths := []string{abs}
	if real, err := filepath.EvalSymlinks(abs); err == nil && real != abs {
		paths = append(paths, real)
	}
	for _, p := range paths {
		for d := filepath.Dir(p); ; d = filepath.Dir(d) {
			fi, err := os.Stat(d)
			if err != nil {
				return sticky, err
			}
			made, err := closeAncestor(d, fi)
			if err != nil && traversable {
				return sticky, fmt.Errorf("%w: a run could replace the runs directory in it; or set executor.runsDir elsewhere", err)
			}
			if made {
				sticky = append(sticky, d)
			}
			if traversable && fi.Mode().Perm()&0o001 == 0 {
				return sticky, fmt.Errorf("%s (mode %04o) does not let other uids through, so no run of executor.runAs could reach its directory: make it 0711 or 0755 (systemd: RuntimeDirectoryMode=0711) or set executor.runsDir elsewhere", d, fi.Mode().Perm())
			}
			if d == filepath.Dir(d) {
				break
			}
		}
	}
	return sticky, nil
}

// closeAncestor makes directory d (info fi, from a lookup by path) sticky when every uid may
// write in it. The mode is read and changed on the directory opened, never through a link:
// one swapped in after the lookup (by whoever may write d's parent) could otherwise have a
// root agent give a directory of its choosing d's mode (0777 and sticky).
// made: it changed d's mode.
func closeAncestor(d string, fi fs.FileInfo) (made bool, err error) {
	if fi.Mode().Perm()&0o002 == 0 || fi.Mode()&fs.ModeSticky != 0 {
		return false, nil
	}
	fd, err := unix.Open(d, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		return false, nil // a link (O_NOFOLLOW with O_DIRECTORY): checkAncestors walks the real path too
	}
	if err != nil {
		return false, fmt.Errorf("%s is writable by every uid and not sticky, and could not be opened to make it sticky: %w", d, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false, fmt.Errorf("%s: %w", d, err)
	}
	if st.Mode&0o002 == 0 || st.Mode&unix.S_ISVTX != 0 {
		return false, nil // changed since the lookup: not an open directory any more
	}
	// Its other bits (a shared directory's setgid) stay.
	if err := unix.Fchmod(fd, uint32(st.Mode)&0o7777|unix.S_ISVTX); err != nil {
		return false, fmt.Errorf("%s is writable by every uid and not sticky, and could not be made sticky (chmod +t): %w", d, err)
	}
	return true, nil
}

// sharedDirs are the directories every run may write in whatever its uid: /dev/shm (POSIX
// shared memory: a run's with the sandbox off, or whose action's sandbox.write lists it;
// README "Isolation") and /tmp.
var sharedDirs = []string{shmDir, "/tmp"}

// closeShared makes each of sharedDirs sticky where every uid may write in it: under
// runAs, in a 0777 one (the chart's emptyDirs) one run's uid could rename another's shared
// memory or semaphore away and put one of its own, readable by it, under the same name for
// the other run's processes to open. A missing one is nobody's to share.
// sticky lists the directories it made sticky.
func closeShared() (sticky []string, err error) {
	for _, d := range sharedDirs {
		fi, err := os.Stat(d)
		if err != nil {
			continue
		}
		made, err := closeAncestor(d, fi)
		if err != nil {
			return sticky, fmt.Errorf("%w: runs of executor.runAs share it", err)
		}
		if made {
			sticky = append(sticky, d)
		}
	}
	return sticky, nil
}

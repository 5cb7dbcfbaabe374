package executor

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// maxUsageDepth is how deep the run directory's size is counted: deeper, a directory counts
// as past runDirSize. Counting holds an open file per level (a running command's
// directories cannot be moved up as removeTree does), and a directory a command nests as deep
// as it likes must not take the agent's open files, nor hide what it holds.
const maxUsageDepth = 256

// withinSize reports whether the space dir's files take (blocks, so a sparse file counts as
// what it holds) is at most limit. It walks by names in open directories, never by paths: a
// path past PATH_MAX (20 names of 250 bytes) cannot be looked up, and what is below it was
// not counted. An entry that is gone meanwhile counts as nothing; a directory nested past
// maxUsageDepth, or one the agent is refused (a chmod 000 of the agent's own uid), as over.
func withinSize(dir string, limit int64) bool {
	d, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return true // gone: the run is ending
	}
	defer d.Close()
	u := usage{limit: limit}
	u.walk(d, 0)
	return !u.over
}

type usage struct {
	limit, n int64
	over     bool
}

func (u *usage) walk(d *os.File, depth int) {
	for !u.over {
		names, err := d.Readdirnames(256) // a chunk at a time: the command decides how many there are
		for _, name := range names {
			if u.over {
				return
			}
			var st unix.Stat_t
			if unix.Fstatat(int(d.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
				continue
			}
			u.n += st.Blocks * 512
			u.over = u.n > u.limit
			if st.Mode&unix.S_IFMT != unix.S_IFDIR {
				continue
			}
			if depth+1 >= maxUsageDepth {
				u.over = true
				return
			}
			fd, err := unix.Openat(int(d.Fd()), name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				u.over = u.over || errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM)
				continue
			}
			sub := os.NewFile(uintptr(fd), name)
			u.walk(sub, depth+1)
			sub.Close()
		}
		if err != nil {
			return
		}
	}
}

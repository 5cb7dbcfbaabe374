package sandbox

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Layout is the file system as a sandboxed command sees it: everything readable but the
// private paths. Landlock only allows, so "everything but" is spelled as the entries beside
// each private path along its ancestors, each allowed as a whole hierarchy. It is computed
// once at start: an entry created later is not allowed (fail closed), one removed is skipped.
type Layout struct {
	Dirs, Files       []string // read and execute
	DevDirs, DevFiles []string // under /dev: read, write, ioctl
	private           []string // cleaned, symlinks resolved too
}

// NewLayout lists what a command may read beside private (the runs root, the agent's config
// and credential files). A private path that does not exist is still kept out. A
// world-writable directory (/tmp, /dev/shm; sticky or not) along the way allows none of its
// entries: each belongs to whoever made it (any uid could replace its own with a link to a
// private path by the time a run's ruleset opens it), and on a busy machine there are
// thousands, a rule each that every run would pay for. Commands get TMPDIR in their run.
func NewLayout(private []string) (*Layout, error) {
	l := &Layout{}
	for _, p := range private {
		if p == "" {
			continue
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("sandbox: private path %s: %w", p, err)
		}
		l.private = append(l.private, abs)
		if real := realPath(abs); real != abs {
			l.private = append(l.private, real)
		}
	}
	if len(l.private) == 0 {
		return nil, fmt.Errorf("sandbox: no private path")
	}
	ancestors := map[string]bool{}
	for _, p := range l.private {
		for d := filepath.Dir(p); ; d = filepath.Dir(d) {
			ancestors[d] = true
			if d == "/" {
				break
			}
		}
	}
	dirs := sortedKeys(ancestors)
	for _, d := range dirs {
		if err := l.addEntries(d, ancestors); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// realPath is abs with the links along it resolved, as far as it exists: the agent builds
// its layout before it makes the runs root, which may lie behind a link (/var/run is one).
func realPath(abs string) string {
	rest := ""
	for d := abs; ; d = filepath.Dir(d) {
		if real, err := filepath.EvalSymlinks(d); err == nil {
			return filepath.Join(real, rest)
		}
		if d == filepath.Dir(d) {
			return abs
		}
		rest = filepath.Join(filepath.Base(d), rest)
	}
}

// addEntries allows the entries of ancestor d that are neither private nor ancestors.
func (l *Layout) addEntries(d string, ancestors map[string]bool) error {
	fi, err := os.Stat(d)
	if err != nil {
		return nil // a private path's missing parent: nothing beside it to allow
	}
	if shared(fi) {
		return nil // see NewLayout
	}
	entries, err := os.ReadDir(d)
	if err != nil {
		return fmt.Errorf("sandbox: list %s: %w", d, err)
	}
	for _, e := range entries {
		path := filepath.Join(d, e.Name())
		if ancestors[path] || l.covers(path) {
			continue
		}
		target := path
		if e.Type()&os.ModeSymlink != 0 {
			// A rule opens what the link names: allow that, unless it is private or leads to
			// a private path (Kubernetes' Secret volumes: ..data -> ..2024_01_01...).
			real, err := filepath.EvalSymlinks(path)
			if err != nil || strings.HasPrefix(real, "/proc/") || l.Overlaps(real) {
				continue
			}
			target = real
		}
		fi, err := os.Stat(target)
		if err != nil {
			continue
		}
		switch {
		case isDevice(target):
			l.addDevice(target, fi, 0)
		case fi.IsDir():
			l.Dirs = append(l.Dirs, target)
		default:
			l.Files = append(l.Files, target)
		}
	}
	return nil
}

// rawDevices are the character devices onto the machine's memory and I/O ports.
var rawDevices = [...]string{"/dev/mem", "/dev/kmem", "/dev/port"}

// maxDevDepth bounds how deep addDevice lists /dev; a directory deeper that holds raw
// storage is left out whole.
const maxDevDepth = 4

// addDevice allows device path (info fi) unless it reaches raw storage or memory: a block
// device holds a file system's bytes, the private paths' among them, which a command in the
// disk's group or running as root could read; /dev/mem the agent's memory. Nor a
// directory any uid writes in (/dev/shm): not where the runs root is, so not anywhere. A
// directory holding none of them is allowed whole (a pty made later under /dev/pts is
// allowed too); one holding some is listed, its other entries allowed one by one.
func (l *Layout) addDevice(path string, fi os.FileInfo, depth int) {
	switch {
	case excludedDevice(path, fi):
		return
	case !fi.IsDir():
		l.DevFiles = append(l.DevFiles, path)
		return
	case !holdsExcluded(path):
		l.DevDirs = append(l.DevDirs, path)
		return
	case depth >= maxDevDepth:
		return
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return
	}
	for _, e := range entries {
		p := filepath.Join(path, e.Name())
		if e.Type()&os.ModeSymlink != 0 || l.Overlaps(p) {
			continue // Landlock checks a link's target where it lies, not the link
		}
		if fi, err := os.Lstat(p); err == nil {
			l.addDevice(p, fi, depth+1)
		}
	}
}

// shared reports whether a directory is world-writable (/tmp, /dev/shm), sticky or not (a
// Kubernetes emptyDir is 0777 without the sticky bit: the chart's /dev/shm): its entries
// belong to whoever made them, any uid's, every run's of the agent's uid among them. Allowed
// whole, it would be a place where one run leaves files for the next to read.
func shared(fi os.FileInfo) bool { return fi.Mode().Perm()&0o002 != 0 }

// isDevice reports whether path lies under /dev, where the layout allows device rights.
func isDevice(path string) bool { return path == "/dev" || strings.HasPrefix(path, "/dev/") }

// excludedDevice reports whether path (info fi, links not followed) is never allowed: a
// block device, one of rawDevices or a directory any uid writes in (/dev/shm).
func excludedDevice(path string, fi os.FileInfo) bool {
	if fi.IsDir() {
		return shared(fi)
	}
	if fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0 {
		return true
	}
	for _, r := range rawDevices {
		if path == r {
			return true
		}
	}
	return false
}

// holdsExcluded reports whether directory dir holds what excludedDevice excludes, at any
// depth (links not followed: Landlock allows a link's target by the target's own place); an
// unreadable part counts as holding some.
func holdsExcluded(dir string) bool {
	found := false
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir || d.Type()&(os.ModeDevice|os.ModeDir) == 0 {
			return nil
		}
		if fi, err := d.Info(); err == nil && excludedDevice(p, fi) {
			found = true
			return filepath.SkipAll
		}
		return nil
	})
	return found || err != nil
}

// covers reports whether path is a private path or inside one.
func (l *Layout) covers(path string) bool {
	for _, p := range l.private {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

// Overlaps reports whether allowing path as a hierarchy would reach a private path: it is
// one, lies inside one, or holds one.
func (l *Layout) Overlaps(path string) bool {
	path = filepath.Clean(path)
	if l.covers(path) {
		return true
	}
	for _, p := range l.private {
		if path == "/" || strings.HasPrefix(p, path+"/") {
			return true
		}
	}
	return false
}

// Private is the paths kept out of every run, symlinks resolved too.
func (l *Layout) Private() []string { return append([]string(nil), l.private...) }

// SharedMemoryDir is where POSIX shared memory and named semaphores live (glibc's shm_open
// and sem_open): never the layout's, an action's when its sandbox.write lists it.
const SharedMemoryDir = "/dev/shm"

// Size is how many rules the layout makes (each costs about a microsecond per run).
func (l *Layout) Size() int { return len(l.Dirs) + len(l.Files) + len(l.DevDirs) + len(l.DevFiles) }

// sortedKeys is m's keys in order.
func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

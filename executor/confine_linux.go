package executor

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/port-runner/port-runner/internal/sandbox"
	"github.com/port-runner/port-runner/internal/shim"
	"golang.org/x/sys/unix"
)

// confined is how one run is confined: the shim's options, the Landlock ruleset it gets,
// and what to undo once the run has ended.
type confined struct {
	limits      Limits
	opts        shim.Options
	ruleset     *os.File // fd shim.RulesetFD of the shim; nil without a sandbox
	ownsRuleset bool     // the run's own ruleset, closed at release; else its cell's
	cell        bool     // the ruleset is the run directory's, a cell (RunsDir)
	runDir      string
	uids        *sandbox.UIDs
	uid         int
	cg          *sandbox.RunCgroup
}

// confine readies the run's confinement (README "Isolation") in c, the caller's (a value
// on its stack, not one more allocation a run); on error there is nothing to release. It
// applies only under the shim, which does the work between fork and exec.
func confine(c *confined, spec Spec, prep prepared) error {
	iso := spec.Isolation
	*c = confined{limits: iso.Limits, runDir: prep.runDir}
	if len(spec.Shim) == 0 {
		return nil
	}
	adj := OOMScoreAdj
	c.opts.OOMScoreAdj = &adj
	if iso.UIDs != nil {
		uid, ok := iso.UIDs.Take()
		if !ok {
			lo, hi := iso.UIDs.Range()
			return fmt.Errorf("executor.runAs: all %d uids of %d-%d are in use", hi-lo+1, lo, hi)
		}
		c.uids, c.uid = iso.UIDs, uid
		c.opts.UID, c.opts.GID = uid, uid
		if err := chownTree(prep.runDir, uid); err != nil {
			c.release()
			return fmt.Errorf("run directory: %w", err)
		}
	}
	if iso.Cgroups != nil && (iso.Limits.Processes > 0 || iso.Limits.Memory > 0) {
		// A name of the run's alone: a run directory may serve many runs (RunsDir).
		name := "port-runner-" + filepath.Base(prep.runDir) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		cg, err := iso.Cgroups.NewRun(name, iso.Limits.Processes, iso.Limits.Memory)
		if err != nil {
			c.release()
			return err
		}
		c.cg, c.opts.Cgroups = cg, cg.Procs
	}
	// A pids cgroup counts the run's processes whatever their uid; RLIMIT_NPROC only where
	// there is none.
	c.opts.Rlimits = rlimits(iso.Limits, iso.UIDs != nil && (c.cg == nil || !c.cg.CountsProcesses()))
	if iso.Sandbox != nil {
		if err := c.sandbox(spec, prep); err != nil {
			c.release()
			return err
		}
	}
	return nil
}

// sandbox gives the run its Landlock ruleset: its run directory, Dir and Write read-write,
// Read read-only. A run whose directory is a cell (RunsDir) gets the cell's, built the
// first time.
func (c *confined) sandbox(spec Spec, prep prepared) error {
	iso := spec.Isolation
	rw := iso.Write
	if spec.Dir != "" {
		rw = append(rw[:len(rw):len(rw)], spec.Dir)
	}
	build := func(dir string) (int, uint32, error) {
		return iso.Sandbox.RulesetFD(append([]string{dir}, rw...), iso.Read)
	}
	var cl *cell
	if iso.Runs != nil {
		cl = iso.Runs.cellOf(prep.runDir)
	}
	if cl != nil {
		var keyBuf [256]byte // the key stays on the stack: only a cell's first ruleset copies it
		if key, ok := rulesetKey(keyBuf[:0], iso.Sandbox, rw, iso.Read); ok {
			f, flags, err := cl.ruleset(key, build)
			if err != nil {
				return err
			}
			c.ruleset, c.cell, c.opts.Landlock, c.opts.LandlockFlags = f, true, true, flags
			return nil
		}
	}
	fd, flags, err := build(prep.runDir)
	if err != nil {
		return err
	}
	c.ruleset, c.ownsRuleset = os.NewFile(uintptr(fd), "landlock-ruleset"), true
	c.opts.Landlock, c.opts.LandlockFlags = true, flags
	return nil
}

// rulesetKey names what a ruleset allows beside its cell: the sandbox and each path with
// the file it is now, by mount, device and inode (a path made anew or mounted again since a
// cell's ruleset was built, a sandbox.write directory say, needs a new one: Landlock's
// rules hold files, not names). ok is false when a path is missing: such a ruleset is built
// for its run alone. A kernel before 6.8 reuses mount ids: there, a directory unmounted
// and mounted again may keep a stale ruleset in a cell (README "Isolation").
// The key is appended to b.
func rulesetKey(b []byte, sb *sandbox.Sandbox, rw, ro []string) (key []byte, ok bool) {
	b = fmt.Appendf(b, "%p", sb)
	for i, paths := range [2][]string{rw, ro} {
		b = append(b, byte(i))
		for _, p := range paths {
			var st unix.Statx_t
			if unix.Statx(unix.AT_FDCWD, p, 0, unix.STATX_INO|unix.STATX_MNT_ID|unix.STATX_MNT_ID_UNIQUE, &st) != nil {
				return nil, false
			}
			b = fmt.Appendf(b, "\x00%s\x00%d:%d:%d:%d", p, st.Mnt_id, st.Dev_major, st.Dev_minor, st.Ino)
		}
	}
	return b, true
}

// rlimits are the run's rlimits: no core dumps ever, and the limits per process.
func rlimits(l Limits, nproc bool) []shim.Rlimit {
	r := []shim.Rlimit{{Resource: rlimitCore, Soft: 0, Hard: 0}}
	if l.OpenFiles > 0 {
		r = append(r, shim.Rlimit{Resource: syscall.RLIMIT_NOFILE, Soft: int64(l.OpenFiles), Hard: int64(l.OpenFiles)})
	}
	if s := int64(l.CPUTime.Seconds()); s > 0 {
		// SIGXCPU at the soft limit (LimitLabel tells it), SIGKILL past the hard one.
		r = append(r, shim.Rlimit{Resource: syscall.RLIMIT_CPU, Soft: s, Hard: s + 2})
	}
	if l.RunDirSize > 0 {
		r = append(r, shim.Rlimit{Resource: syscall.RLIMIT_FSIZE, Soft: l.RunDirSize, Hard: l.RunDirSize})
	}
	if nproc && l.Processes > 0 {
		// Counted per uid: meaningful only when the uid is the run's alone.
		r = append(r, shim.Rlimit{Resource: rlimitNproc, Soft: int64(l.Processes), Hard: int64(l.Processes)})
	}
	return r
}

const (
	rlimitCore  = 4 // RLIMIT_CORE
	rlimitNproc = 6 // RLIMIT_NPROC
)

// files are the shim's extra files after the control socket: the ruleset as fd 4.
func (c *confined) files() []*os.File {
	if c.ruleset == nil {
		return nil
	}
	return []*os.File{c.ruleset}
}

// exceeded is the limit the running command has gone over, "" while none: its cgroup says
// so, or its run directory is over its size.
func (c *confined) exceeded() string {
	if c.cg != nil {
		if hit := c.cg.Exceeded(); hit != "" {
			return hit
		}
	}
	if c.limits.RunDirSize > 0 && !withinSize(c.runDir, c.limits.RunDirSize) {
		return LimitRunDir
	}
	if c.countsUID() && uidProcesses(c.uid) >= c.limits.Processes {
		return LimitProcesses // RLIMIT_NPROC refuses its next fork
	}
	return ""
}

// countsUID reports whether the run's process limit is RLIMIT_NPROC on its own uid, which
// the kernel enforces without saying so: the executor counts the uid's processes.
func (c *confined) countsUID() bool {
	return c.uids != nil && c.limits.Processes > 0 && (c.cg == nil || !c.cg.CountsProcesses())
}

// watched reports whether anything of the run is checked while it runs.
func (c *confined) watched() bool { return c.cg != nil || c.limits.RunDirSize > 0 || c.countsUID() }

// label tells a run that hit a limit from one that failed: the kernel's signal for a limit
// of its own (SIGXCPU, SIGXFSZ), or what the run's cgroup counted.
func (c *confined) label(res Result) Result {
	hit := res.limit
	if hit == "" && c.cg != nil {
		hit = c.cg.Exceeded()
	}
	// By the signal, or as a shell reports a child it killed (128 + the signal's number).
	if hit == "" && c.limits.CPUTime > 0 && (res.Signal == syscall.SIGXCPU || res.ExitCode == 128+int(syscall.SIGXCPU)) {
		hit = LimitCPUTime
	}
	if hit == "" && c.limits.RunDirSize > 0 && (res.Signal == syscall.SIGXFSZ || res.ExitCode == 128+int(syscall.SIGXFSZ)) {
		hit = LimitFileSize
	}
	if hit != "" && !res.Success {
		res.Label = c.limits.LimitLabel(hit)
	}
	return res
}

// inCell reports whether the run's sandbox was its run directory's, a cell's (RunsDir).
func (c *confined) inCell() bool { return c.cell }

// release undoes the confinement once the run has ended: the shim has killed every process
// of it, so its cgroups can go and its uid is free again. (Its directory is its maker's to
// remove; files it wrote elsewhere, which only an unsandboxed run can, stay: the agent
// never deletes by owner in a shared directory.)
func (c *confined) release() {
	if c.ownsRuleset {
		c.ruleset.Close()
	}
	if c.uids != nil {
		// Before its uid can go to another run: the directory the agent's again.
		_ = os.Lchown(c.runDir, os.Geteuid(), os.Getegid())
		_ = os.Chmod(c.runDir, 0o700)
	}
	if c.cg != nil {
		c.cg.Remove()
	}
	if c.uids != nil {
		c.uids.Give(c.uid)
	}
}

// chownTree gives dir and everything in it (what the agent put there) to uid.
func chownTree(dir string, uid int) error {
	return filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, uid)
	})
}

// uidProcesses counts the processes of uid (the owner of /proc/PID is the process's uid;
// a run's commands are dumpable, so /proc shows it).
func uidProcesses(uid int) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		if name := e.Name(); name[0] < '0' || name[0] > '9' {
			continue
		}
		if info, err := e.Info(); err == nil {
			if st, ok := info.Sys().(*syscall.Stat_t); ok && int(st.Uid) == uid {
				n++
			}
		}
	}
	return n
}

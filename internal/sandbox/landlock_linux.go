//go:build linux

package sandbox

import (
	"fmt"
	"os"

	"github.com/landlock-lsm/go-landlock/landlock"
	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
)

const (
	readExec = landlock.AccessFSSet(ll.AccessFSExecute | ll.AccessFSReadFile | ll.AccessFSReadDir | ll.AccessFSResolveUnix)
	device   = landlock.AccessFSSet(ll.AccessFSReadFile | ll.AccessFSWriteFile | ll.AccessFSReadDir |
		ll.AccessFSTruncate | ll.AccessFSIoctlDev)
	// A rule on a file takes file rights only (EINVAL otherwise).
	fileRights = landlock.AccessFSSet(ll.AccessFSExecute | ll.AccessFSReadFile | ll.AccessFSWriteFile |
		ll.AccessFSTruncate | ll.AccessFSIoctlDev)
)

// LandlockABI is the kernel's Landlock ABI version, 0 without Landlock.
func LandlockABI() int {
	v, err := ll.LandlockGetABIVersion()
	if err != nil || v < 0 {
		return 0
	}
	return v
}

// Sandbox builds each run's Landlock ruleset over a Layout: every file system right
// go-landlock knows is handled and both IPC scopes are set, best effort, so a kernel
// enforces what its ABI has. The network is not handled (a command reaches what the pod
// reaches; README "Isolation").
type Sandbox struct {
	layout *Layout
	abi    int
	cfg    landlock.Config
	// cached is the layout's rules with their paths opened once, at New (O_PATH): a run's
	// ruleset takes them with one landlock_add_rule each, and a path replaced since (by a
	// link to a private path, say) changes nothing.
	cached []cachedRule
}

type cachedRule struct {
	fd     int
	access uint64
}

// New is a Sandbox over layout, or an error when the kernel has no Landlock.
func New(layout *Layout) (*Sandbox, error) {
	abi := LandlockABI()
	if abi < 1 {
		return nil, fmt.Errorf("the kernel has no Landlock (Linux 5.13+ with landlock in its LSM list)")
	}
	s := &Sandbox{layout: layout, abi: abi, cfg: landlock.Config{
		HandledAccessFS: landlock.V11.HandledAccessFS,
		Scoped:          landlock.V11.Scoped,
	}.BestEffort()}
	handled := abiConfigs[min(abi, len(abiConfigs)-1)].HandledAccessFS
	for _, set := range []struct {
		access landlock.AccessFSSet
		paths  []string
	}{{readExec, layout.Dirs}, {device, layout.DevDirs}, {readExec & fileRights, layout.Files}, {device & fileRights, layout.DevFiles}} {
		access := uint64(set.access & handled)
		for _, p := range set.paths {
			fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
			if err != nil {
				continue // gone since the listing: nothing to allow
			}
			s.cached = append(s.cached, cachedRule{fd: fd, access: access})
		}
	}
	return s, nil
}

// abiConfigs are go-landlock's configurations by Landlock ABI version: what a kernel of
// that version handles.
var abiConfigs = []landlock.Config{{}, landlock.V1, landlock.V2, landlock.V3, landlock.V4, landlock.V5, landlock.V6,
	landlock.V7, landlock.V8, landlock.V9, landlock.V10, landlock.V11}

// Layout is what the sandbox allows every run to read.
func (s *Sandbox) Layout() *Layout { return s.layout }

// Protections is what the sandbox enforces on this kernel.
func (s *Sandbox) Protections() []string {
	p := []string{Filesystem, Ptrace}
	if s.abi >= 6 {
		p = append(p, Signals, AbstractSockets)
	}
	return p
}

// ABI is the kernel's Landlock ABI the sandbox runs on.
func (s *Sandbox) ABI() int { return s.abi }

// RulesetFD builds one run's ruleset: the layout read-only, rw (the run's directories, its
// workdir, its action's sandbox.write) read-write, ro (sandbox.read) read-only. The caller
// passes fd to the shim and closes it; flags go with it.
func (s *Sandbox) RulesetFD(rw, ro []string) (fd int, flags uint32, err error) {
	var rules []landlock.Rule
	rwDirs, rwFiles := splitFiles(rw)
	roDirs, roFiles := splitFiles(ro)
	dirRule := landlock.RWDirs(rwDirs...).WithResolveUnix()
	if s.abi >= 2 {
		// Refer (links and renames across directories) exists from ABI 2; asked for on an
		// older kernel, best effort would drop the whole sandbox.
		dirRule = dirRule.WithRefer()
	}
	rules = append(rules, dirRule, landlock.RWFiles(rwFiles...).WithResolveUnix(),
		landlock.PathAccess(readExec, roDirs...).IgnoreIfMissing(),
		landlock.PathAccess(readExec&fileRights, roFiles...).IgnoreIfMissing())
	fd, flags, err = s.cfg.NewRulesetFD(rules...)
	if err != nil {
		return -1, 0, fmt.Errorf("sandbox: %w", err)
	}
	if fd < 0 {
		return -1, 0, fmt.Errorf("sandbox: the kernel enforces nothing of the ruleset")
	}
	for _, c := range s.cached {
		if c.access == 0 {
			continue
		}
		if err := ll.LandlockAddPathBeneathRule(fd, &ll.PathBeneathAttr{AllowedAccess: c.access, ParentFd: c.fd}, 0); err != nil {
			unix.Close(fd)
			return -1, 0, fmt.Errorf("sandbox: add a rule of the layout: %w", err)
		}
	}
	return fd, flags, nil
}

// splitFiles separates directories from other files (a missing path counts as a directory,
// which go-landlock then reports).
func splitFiles(paths []string) (dirs, files []string) {
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			files = append(files, p)
		} else {
			dirs = append(dirs, p)
		}
	}
	return dirs, files
}

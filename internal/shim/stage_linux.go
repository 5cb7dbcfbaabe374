//go:build linux

package shim

import (
	"runtime"
	"syscall"
	"unsafe"
)

// The Go shim's second stage. A Go program cannot run code between fork and exec, where the
// C shim confines the command; so the Go shim starts its own binary again, as the command's
// leader, under [stageArg]: that process confines itself and execs the command in its place,
// keeping the shim's every guarantee (the leader is the shim's child, with Pdeathsig, in its
// own group) at the cost of a second Go start-up per run (BENCHMARKS.md). Confining a thread
// of the shim instead and forking from it would leave that thread inside the command's
// domain, where the command could kill it, and the shim with it.
const stageArg = "__port-runner-stage" // "OPTION... -- PATH ARGV...": confine, then exec

// stageErrFD is where the stage says why the command could not start (close-on-exec, so it
// reads end of file once the command runs).
const stageErrFD = 3

// Raw numbers the syscall package lacks (the same on every architecture).
const (
	sysLandlockRestrictSelf = 446
	prCapAmbient            = 47
	prCapAmbientClearAll    = 4
	prSetNoNewPrivs         = 38
	capVersion3             = 0x20080522
)

// startStage starts the second stage as the command's leader and waits until it has exec'd
// the command or said why it could not.
func startStage(self []string, opts Options, args []string, sys *syscall.SysProcAttr) (leader int, msg string) {
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
		return 0, "stage pipe: " + err.Error()
	}
	files := []uintptr{0, 1, 2, uintptr(p[1])}
	if opts.Landlock {
		files = append(files, RulesetFD)
	}
	argv := append(append(self[:len(self):len(self)], stageArg), args...)
	pid, err := syscall.ForkExec("/proc/self/exe", argv, &syscall.ProcAttr{Env: syscall.Environ(), Files: files, Sys: sys})
	syscall.Close(p[1])
	defer syscall.Close(p[0])
	if err != nil {
		return 0, err.Error()
	}
	var buf [512]byte
	n, err := syscall.Read(p[0], buf[:])
	for err == syscall.EINTR {
		n, err = syscall.Read(p[0], buf[:])
	}
	if n > 0 {
		var ws syscall.WaitStatus
		for {
			if _, err := syscall.Wait4(pid, &ws, 0, nil); err != syscall.EINTR {
				break
			}
		}
		return 0, string(buf[:n])
	}
	return pid, ""
}

// selfPrefix is how this process was started, up to its shim arguments: the shim binary's
// path, or the agent's binary and [Command].
func selfPrefix(args []string) []string {
	all, err := cmdline()
	if err != nil || len(all) < len(args) {
		return []string{Binary}
	}
	return all[:len(all)-len(args)]
}

// stage is the second stage: it confines itself as opts say and execs the command.
func stage(args []string) int {
	runtime.LockOSThread() // never unlocked: this thread's credentials are what exec passes on
	opts, rest, err := ParseArgs(args[1:])
	if err != nil || len(rest) < 2 {
		stderr("port-runner-shim: bad stage arguments\n")
		return 127
	}
	syscall.CloseOnExec(stageErrFD)
	msg := ownIDs(opts)
	if msg == "" {
		msg = confine(opts)
	}
	if msg != "" {
		_, _ = syscall.Write(stageErrFD, []byte(msg))
		return 127
	}
	err = syscall.Exec(rest[0], rest[1:], syscall.Environ())
	_, _ = syscall.Write(stageErrFD, []byte(err.Error()))
	return 127
}

// confine applies opts to this process (its locked thread, for what is per thread), in the
// C shim's order; "" when all went, else the failed step and why.
func confine(opts Options) string {
	for _, c := range opts.Cgroups {
		if err := writeFile(c, "0"); err != nil {
			return "join cgroup: " + err.Error()
		}
	}
	if opts.OOMScoreAdj != nil {
		if err := writeFile("/proc/self/oom_score_adj", itoa64(int64(*opts.OOMScoreAdj))); err != nil {
			return "oom_score_adj: " + err.Error()
		}
	}
	for _, r := range opts.Rlimits {
		lim := syscall.Rlimit{Cur: rlim(r.Soft), Max: rlim(r.Hard)}
		if err := syscall.Setrlimit(r.Resource, &lim); err != nil {
			return "setrlimit: " + err.Error()
		}
	}
	if opts.UID > 0 {
		if msg := setIDs(opts); msg != "" {
			return msg
		}
	}
	if opts.UID > 0 || opts.Landlock {
		if err := Prctl(prSetNoNewPrivs, 1); err != nil {
			return "no_new_privs: " + err.Error()
		}
	}
	if opts.Landlock {
		if _, _, e := syscall.RawSyscall(sysLandlockRestrictSelf, RulesetFD, uintptr(opts.LandlockFlags), 0); e != 0 {
			return "landlock: " + e.Error()
		}
		syscall.Close(RulesetFD)
	}
	return ""
}

// setIDs becomes the run's uid and gid and keeps no capability: a change between two non-zero
// uids keeps them all, ambient ones even across exec, so the command could setuid back. It
// then checks that none is left: a command of another uid holding CAP_KILL could signal
// anything. Capabilities are per thread: this is the locked thread that execs.
func setIDs(opts Options) string {
	if err := syscall.Setgroups(nil); err != nil {
		return "setgroups: " + err.Error()
	}
	if err := syscall.Setgid(opts.GID); err != nil {
		return "setgid: " + err.Error()
	}
	if err := syscall.Setuid(opts.UID); err != nil {
		return "setuid: " + err.Error()
	}
	hdr := [2]uint32{capVersion3, 0}
	var data [6]uint32 // two of {effective, permitted, inheritable}: all zero
	if err := Prctl(prCapAmbient, prCapAmbientClearAll); err != nil {
		return "drop capabilities: " + err.Error()
	}
	if _, _, e := syscall.RawSyscall(syscall.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data)), 0); e != 0 {
		return "drop capabilities: " + e.Error()
	}
	data = [6]uint32{^uint32(0), ^uint32(0), ^uint32(0), ^uint32(0), ^uint32(0), ^uint32(0)}
	if _, _, e := syscall.RawSyscall(syscall.SYS_CAPGET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data)), 0); e != 0 {
		return "check capabilities: " + e.Error()
	}
	if data != [6]uint32{} {
		return "capabilities left after the drop"
	}
	if syscall.Getuid() != opts.UID || syscall.Geteuid() != opts.UID || syscall.Getgid() != opts.GID {
		return "ids not taken"
	}
	return ""
}

func rlim(v int64) uint64 {
	if v < 0 {
		return ^uint64(0) // RLIM_INFINITY
	}
	return uint64(v)
}

func writeFile(path, s string) error {
	fd, err := syscall.Open(path, syscall.O_WRONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	_, err = syscall.Write(fd, []byte(s))
	return err
}

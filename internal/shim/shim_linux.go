//go:build linux

package shim

import (
	"syscall"
	"unsafe"
)

const (
	prSetDumpable       = 4  // PR_SET_DUMPABLE
	prSetChildSubreaper = 36 // PR_SET_CHILD_SUBREAPER
)

// Main is the shim: args are its options, "--", the command's resolved path, then its argv
// (or "--version", or the second stage's arguments: stage_linux.go).
//
// Why a shim: Pdeathsig reaches only the agent's direct child, and a process group only
// those that stay in it. The shim is a child subreaper, so every descendant the command
// orphans (setsid, double fork) becomes the shim's child and cannot escape; it runs the
// command in a process group of its own, passes the executor's Terminate and Kill on to that
// group, and when the command's leader exits (or is killed: timeout, the agent's death, the
// fence), it kills everything left, group or not. It stays out of the command's group, so
// killing the group never kills the shim before it has reported how the command ended.
func Main(args []string) int {
	if len(args) == 1 && args[0] == "--version" {
		_, _ = syscall.Write(1, []byte(VersionGo+"\n"))
		return 0
	}
	if len(args) > 0 && args[0] == stageArg {
		return stage(args)
	}
	opts, rest, err := ParseArgs(args)
	if err != nil || len(rest) < 2 {
		stderr("port-runner-shim: usage: [--fence MS] [--renewals FD] [--cgroup FILE] [--oom N] [--rlimit R:S:H] [--ids UID:GID] [--landlock 4:FLAGS] [--gate 3] -- PATH ARGV0 [ARG...]\n")
		return 127
	}
	// What the command would inherit anyway goes on the shim itself, saving the second
	// stage's start-up (stage_linux.go): oom_score_adj and every rlimit but NPROC (the
	// shim's own forks must not count against it); none of them gets in the shim's way. It
	// comes first: a non-dumpable process's /proc files are root's.
	msg := ownIDs(opts)
	if msg == "" && !opts.needsStage() {
		msg = confine(opts)
	}
	// Non-dumpable: the shim's environment (the command's, with its run's token) and memory
	// then need CAP_SYS_PTRACE to read, not just the same uid.
	_ = SetNonDumpable()
	if err := Prctl(prSetChildSubreaper, 1); err != nil {
		stderr("port-runner-shim: PR_SET_CHILD_SUBREAPER: " + err.Error() + "\n")
		return 127
	}
	// The command must not inherit the control socket: it closes with the shim alone.
	syscall.CloseOnExec(ControlFD)
	if opts.RenewalsFD > 0 && msg == "" {
		// Nor the renewals pipe; which the shim reads only when it looks at the fence.
		// A pipe, or nothing: the Go runtime keeps files of its own open (the cgroup's CPU
		// quota), which an fd the executor did not pass may name.
		var st syscall.Stat_t
		err := syscall.Fstat(opts.RenewalsFD, &st)
		if err == nil && st.Mode&syscall.S_IFMT != syscall.S_IFIFO {
			err = syscall.EBADF
		}
		if err == nil {
			syscall.CloseOnExec(opts.RenewalsFD)
			err = syscall.SetNonblock(opts.RenewalsFD, true)
		}
		if err != nil {
			msg = "--renewals: " + err.Error() // no renewal would ever come: say so now
		}
	}
	if msg == "" && opts.Gate {
		// The Go shim cannot run code between its fork and the command's exec (the C one
		// waits there): it waits before its fork, its own start-up done.
		msg = awaitGo()
	}
	leader := 0
	if msg == "" {
		leader, msg = start(selfPrefix(args), opts, args, rest)
	}
	if msg != "" {
		if _, werr := syscall.Write(ControlFD, []byte(msg)); werr != nil {
			stderr("could not start: " + msg + "\n") // no executor listening: say it in the log
		}
		return 127
	}
	return supervise(leader, opts)
}

// ownIDs refuses a run uid or gid that is the shim's own (the parser refuses 0): the
// command would reach the agent and every run of it.
func ownIDs(o Options) string {
	if o.UID <= 0 {
		return ""
	}
	if o.UID == syscall.Getuid() || o.UID == syscall.Geteuid() || o.GID == syscall.Getgid() || o.GID == syscall.Getegid() {
		return "--ids: the run's uid or gid is the agent's own"
	}
	return ""
}

// Events of supervise besides the control bytes (0-255).
const (
	evEOF   = 256 + iota // the control socket ended: the agent is gone
	evFence              // no byte from the agent for the fence
	evKill               // the death grace after evEOF is over
)

// supervise passes the executor's control bytes on to the command's group and enforces the
// fence (opts.FenceMs > 0), until the command's leader exits; it returns the shim's exit code.
func supervise(leader int, opts Options) int {
	// The goroutines below end with the process: Main's return is followed by exit.
	events := make(chan int, 4)
	go readControl(events)
	renewals := startFence(opts.FenceMs*1e6, opts.RenewalsFD, events)
	exited := make(chan struct{})
	go func() {
		WaitExited(leader) // unreaped, so the leader's pid (the group's id) cannot be reused
		close(exited)
	}()
	for {
		select {
		case <-exited:
			return finish(leader, opts)
		case ev := <-events:
			if ev < evEOF && renewals.control(byte(ev)) {
				continue
			}
			switch ev {
			case int(Terminate):
				terminate(leader)
			case int(Kill), evKill, evFence:
				killLeader(leader)
			case evEOF:
				terminate(leader)
				go func() {
					sleep(deathGraceNs)
					events <- evKill
				}()
			}
		}
	}
}

// start starts the command: straight away when nothing confines it, else through the
// second stage (stage_linux.go), which confines itself and execs the command. It returns
// the leader's pid, or why the command could not start.
func start(self []string, opts Options, args, rest []string) (leader int, msg string) {
	// If the shim itself is killed, the leader goes with it. No goroutine of the shim
	// locks its thread, so the runtime never ends the forking thread (which would fire
	// Pdeathsig early, https://go.dev/issue/27505).
	sys := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if !opts.needsStage() {
		pid, err := syscall.ForkExec(rest[0], rest[1:], &syscall.ProcAttr{Env: syscall.Environ(), Files: []uintptr{0, 1, 2}, Sys: sys})
		if err != nil {
			return 0, err.Error()
		}
		return pid, ""
	}
	if opts.Landlock {
		syscall.CloseOnExec(RulesetFD)
		defer syscall.Close(RulesetFD) // the stage has its copy
	}
	return startStage(self, opts, args, sys)
}

// terminate asks the command's group to end.
func terminate(leader int) {
	if leader > 1 {
		_ = syscall.Kill(-leader, syscall.SIGTERM)
	}
}

// killLeader kills the command's group, and its leader even if it left the group.
func killLeader(leader int) {
	if leader <= 1 { // never kill(-1) nor kill(0): only a group the shim made
		return
	}
	_ = syscall.Kill(-leader, syscall.SIGKILL)
	_ = syscall.Kill(leader, syscall.SIGKILL)
}

// finish ends what the exited command left behind, reaps it all and returns the exit code
// that passes the command's end on.
func finish(leader int, opts Options) int {
	// RLIMIT_NPROC refuses a fork silently: if the run's uid (its own) holds as many
	// processes as the limit as its command ends, the limit is why it ended, and the
	// executor is told (its label says so).
	nproc := opts.nprocLimit()
	hit := nproc > 0 && uidProcesses(opts.UID) >= nproc
	// The run is over when its command is: nothing of it may go on unobserved.
	killLeader(leader)
	var ws syscall.WaitStatus
	for {
		if _, err := syscall.Wait4(leader, &ws, 0, nil); err != syscall.EINTR {
			break
		}
	}
	reapAll()
	if hit {
		_, _ = syscall.Write(ControlFD, []byte(NoteProcesses))
	}
	return exitLike(ws)
}

// reapAll kills and reaps every child the shim has until it has none. Orphans of the
// command are reparented to the shim (a subreaper), so killing its children level by level
// ends the whole tree: a killed child's own children become the shim's in turn.
func reapAll() {
	misses := 0
	for {
		pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
		switch {
		case err == syscall.EINTR, pid > 0:
			continue
		case err != nil:
			return // ECHILD: no child left
		}
		// Children remain, still running: kill them, wait for one, look again.
		if killChildren() > 0 {
			misses = 0
			_, _ = syscall.Wait4(-1, nil, 0, nil)
			continue
		}
		// None found in /proc (one may have just exited; or /proc is not this pid
		// namespace's): look again briefly, then give up rather than wait forever for a
		// process we cannot see, which would hold the run open.
		if misses++; misses > 20 {
			return
		}
		sleep(1e6)
	}
}

// exitLike passes the command's end on: its exit code, or death by the same signal.
func exitLike(ws syscall.WaitStatus) int {
	if !ws.Signaled() {
		return ws.ExitStatus()
	}
	sig := ws.Signal()
	defaultDisposition(sig)
	_ = syscall.Kill(syscall.Getpid(), sig)
	sleep(1e9)            // delivery is asynchronous; the signal ends us meanwhile
	return 128 + int(sig) // if it did not, as a shell would report it
}

// defaultDisposition sets sig back to SIG_DFL with rt_sigaction, replacing the Go runtime's
// handler. An all-zero struct sigaction is SIG_DFL whatever the architecture's field order.
func defaultDisposition(sig syscall.Signal) {
	var act [4]uint64
	_, _, _ = syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
}

// WaitExited blocks until pid has exited, leaving it a zombie (WNOWAIT), so the caller can
// still signal its process group without a pid-reuse race before reaping it.
func WaitExited(pid int) {
	const pPID = 1     // P_PID
	var info [128]byte // siginfo_t
	for {
		_, _, e := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid),
			uintptr(unsafe.Pointer(&info)), syscall.WEXITED|syscall.WNOWAIT, 0, 0)
		if e != syscall.EINTR {
			// 0, or ECHILD if it is somehow gone already: either way it has exited.
			return
		}
	}
}

// Prctl is prctl(2) with one argument.
func Prctl(option, arg uintptr) error {
	if _, _, e := syscall.RawSyscall6(syscall.SYS_PRCTL, option, arg, 0, 0, 0, 0); e != 0 {
		return e
	}
	return nil
}

// SetNonDumpable makes the calling process non-dumpable: its /proc/PID/environ, mem and
// maps then need CAP_SYS_PTRACE, which processes of the same uid lack.
func SetNonDumpable() error { return Prctl(prSetDumpable, 0) }

func sleep(ns int64) {
	ts := syscall.NsecToTimespec(ns)
	for syscall.Nanosleep(&ts, &ts) == syscall.EINTR {
	}
}

func stderr(s string) { _, _ = syscall.Write(2, []byte(s)) }

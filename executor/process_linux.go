package executor

import (
	"os"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/port-runner/port-runner/internal/shim"
)

// withDeathSignal makes a command started without the shim die with the agent
// (Pdeathsig; its own children do not: that is the shim's job). It returns the
// function that undoes its thread lock, to call once the child is reaped.
//
// PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not
// the process (https://go.dev/issue/27505). The Go runtime only ends a thread
// when a goroutine exits while locked to it (LockOSThread without Unlock, as
// some cgo/namespace code does). Locking only around Start is not enough:
// after Unlock the forking thread goes back to the pool, where such a
// goroutine may later run on it and end it, killing our child mid-run. So the
// forking goroutine stays locked to its thread until the child has been
// reaped; no other goroutine can run on (and hence end) that thread
// meanwhile. The cost is one mostly idle OS thread per running command.
// Unlock restores the lock count even if the caller itself holds a lock.
func withDeathSignal(attr *syscall.SysProcAttr) (unlock func()) {
	attr.Pdeathsig = syscall.SIGKILL
	runtime.LockOSThread()
	return runtime.UnlockOSThread
}

// shimGates says whether spec's command is started under the shim, which then holds it for
// Spec.Gate (else Run passes the gate before the fork).
func shimGates(spec Spec) bool { return len(spec.Shim) > 0 }

// startProcess starts the prepared command, under the shim if spec.Shim is set,
// with its stdout and stderr on out.
func startProcess(spec Spec, prep prepared, conf *confined, out childFD) (*process, error) {
	if len(spec.Shim) > 0 {
		return startShimmed(spec, prep, conf, out)
	}
	return spawn(prep.path, spec.Argv, spec, prep, out, nil, true)
}

// spawn starts path with argv in a process group of its own (so a timeout or cancel reaches
// everything it started, and nothing of the agent), /dev/null its stdin, out its stdout and
// stderr and extra its fds from 3 on; deathSignal: it dies with the agent (withDeathSignal).
// It forks with syscall.ForkExec, not exec.Cmd: the pidfd the kernel makes with the child
// (CLONE_PIDFD) is the one watchExit waits on, where os.StartProcess keeps one of its own beside
// it, and none of exec.Cmd's bookkeeping is paid for each run (its copy of the environment,
// an os.Process with its cleanup, an os.File per fd).
func spawn(path string, argv []string, spec Spec, prep prepared, out childFD, extra []int, deathSignal bool) (*process, error) {
	var stdin int
	if f := nullInput(); f != nil {
		stdin = int(f.Fd()) // never closed: nullInput keeps it
	} else {
		fd, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: os.DevNull, Err: err}
		}
		defer unix.Close(fd)
		stdin = fd
	}
	files := append(make([]uintptr, 0, 3+len(extra)), uintptr(stdin), uintptr(out), uintptr(out))
	for _, fd := range extra {
		files = append(files, uintptr(fd))
	}
	pidfd := -1
	sys := &syscall.SysProcAttr{Setpgid: true, PidFD: &pidfd}
	unlock := func() {}
	if deathSignal {
		unlock = withDeathSignal(sys)
	}
	attr := &syscall.ProcAttr{Dir: spec.Dir, Env: prep.env, Files: files, Sys: sys}
	pid, err := syscall.ForkExec(path, argv, attr)
	if err == syscall.EINVAL || err == syscall.ENOSYS || err == syscall.EPERM {
		// What a kernel or a seccomp filter that refuses CLONE_PIDFD says (a kernel before
		// 5.2 ignores it: pidfd stays -1), and what some failed execs say: once more without.
		sys.PidFD, pidfd = nil, -1
		pid, err = syscall.ForkExec(path, argv, attr)
	}
	if err != nil {
		unlock()
		return nil, &os.PathError{Op: "fork/exec", Path: path, Err: err}
	}
	p := &process{pid: pid, unlock: unlock}
	if pidfd >= 0 {
		p.unwatched = pidfdHold{fd: pidfd, set: true}
	}
	return p, nil
}

// watching starts watching the process (watchExit) unless it is already, and returns the channel
// closed once it has exited. Only Run's goroutine calls it.
func (p *process) watching() <-chan struct{} {
	if p.exited == nil {
		pidfd := -1
		if p.unwatched.set {
			pidfd, p.unwatched = p.unwatched.fd, pidfdHold{}
		}
		p.exited = watchExit(p.pid, pidfd)
	}
	return p.exited
}

// exitedNow says whether the process has exited, without waiting and without reaping it.
func (p *process) exitedNow() bool {
	if p.exited != nil {
		return closed(p.exited)
	}
	return waitNow(unix.P_PID, p.pid, unix.WEXITED)
}

// watchExit returns a channel closed when process pid has exited, leaving it a zombie
// (waitid WNOWAIT): its pid, which names its group, cannot be reused until reap. Where the
// kernel has pidfds (Linux 5.4) the wait is the runtime poller's, so a command that sleeps (an
// approval, a deployment) holds no OS thread of the agent; else a thread blocks in waitid
// until it exits. A process found exited when the watching goroutine runs is seen at once,
// without the poller: its pidfd costs no fcntl, no epoll_ctl to add it and none to remove
// it, no os.File. pidfd is the child's from its clone, -1 for none; watchExit owns it.
func watchExit(pid, pidfd int) chan struct{} {
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		if pidfd >= 0 && waitNow(unix.P_PIDFD, pidfd, unix.WEXITED) { // false before Linux 5.4
			_ = unix.Close(pidfd)
			return
		}
		if f := pollablePidfd(pid, pidfd); f != nil {
			defer f.Close()
			if waitPidfd(f) {
				return
			}
		}
		shim.WaitExited(pid)
	}()
	return exited
}

// pollablePidfd is pidfd made non-blocking for the runtime's poller, or where there is
// none (-1) one opened now; nil where the kernel (or a seccomp filter) has none.
func pollablePidfd(pid, pidfd int) *os.File {
	if pidfd < 0 {
		return openPidfd(pid)
	}
	if _, err := unix.FcntlInt(uintptr(pidfd), unix.F_SETFL, unix.O_NONBLOCK); err != nil {
		unix.Close(pidfd)
		return openPidfd(pid)
	}
	return os.NewFile(uintptr(pidfd), "pidfd")
}

// openPidfd is a pollable pidfd of pid, nil where the kernel (or a seccomp
// filter) has none. pid is our unreaped child, so it names no other process.
func openPidfd(pid int) *os.File {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err == unix.EINVAL { // before Linux 5.10, no PIDFD_NONBLOCK
		if fd, err = unix.PidfdOpen(pid, 0); err == nil {
			if err = unix.SetNonblock(fd, true); err != nil {
				unix.Close(fd)
			}
		}
	}
	if err != nil {
		return nil
	}
	return os.NewFile(uintptr(fd), "pidfd")
}

// waitPidfd waits in the runtime's poller until the pidfd's process has exited
// (it polls readable then), without reaping it. false: it could not tell, and
// the caller waits some other way.
func waitPidfd(pidfd *os.File) bool {
	rc, err := pidfd.SyscallConn()
	if err != nil {
		return false
	}
	var werr error
	// Asked first, not only once the pidfd polls readable: Read forgets a readiness that
	// came before it (the process may have exited already), and none comes after.
	err = rc.Read(func(fd uintptr) bool {
		var info unix.Siginfo
		werr = unix.EINTR
		for werr == unix.EINTR { // asked again at once: no readiness would come for it
			werr = unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED|unix.WNOWAIT|unix.WNOHANG, nil)
		}
		// Not exited yet: WNOHANG leaves info zero; wait for the pidfd to poll readable.
		return werr != nil || info.Signo != 0
	})
	// ECHILD: somehow reaped already; either way it has exited.
	return err == nil && (werr == nil || werr == unix.ECHILD)
}

// outputPipe is the command's output pipe: ours non-blocking for the runtime's poller
// (drain sets a deadline on a pending read), theirs blocking, as programs expect of their
// stdout. os.Pipe makes both ends pollable and exec makes theirs blocking again: eight
// fcntl and epoll_ctl calls per run more than this.
func outputPipe() (r *os.File, w childFD, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, -1, os.NewSyscallError("pipe2", err)
	}
	if _, err := unix.FcntlInt(uintptr(p[0]), unix.F_SETFL, unix.O_NONBLOCK); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return nil, -1, os.NewSyscallError("fcntl", err)
	}
	return os.NewFile(uintptr(p[0]), "|0"), childFD(p[1]), nil
}

// childFD is a descriptor only a child gets (its end of the output pipe): a plain fd, not an
// os.File, which would cost an fcntl to make and a cleanup to track.
type childFD int

func (fd childFD) Close() error { return unix.Close(int(fd)) }

// recvNow reads what socket fd holds now, never waiting (MSG_DONTWAIT), as unix.Recvfrom
// does without the sender's address, which Recvfrom allocates on every call.
func recvNow(fd int, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, _, errno := unix.Syscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), unix.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// stopped says whether our unreaped child pid is stopped now (SIGSTOP).
func stopped(pid int) bool { return waitNow(unix.P_PID, pid, unix.WSTOPPED) }

// waitNow says whether waitid finds our unreaped child (idtype P_PID: its pid, which names no
// other process; P_PIDFD: its pidfd) in the state options asks for (WEXITED, WSTOPPED) now,
// without waiting, without reaping it, and without taking its report from another wait; false
// also when the kernel cannot tell.
func waitNow(idtype, id, options int) bool {
	var info unix.Siginfo
	var err error = unix.EINTR
	for err == unix.EINTR {
		err = unix.Waitid(idtype, id, &info, options|unix.WNOHANG|unix.WNOWAIT, nil)
	}
	return err == nil && info.Signo != 0 // WNOHANG leaves info zero when it is not
}

package executor

import (
	"os"
	"os/exec"
	"runtime"
	"syscall"

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

// watch closes exited when cmd's process has exited, leaving it a zombie
// (waitid WNOWAIT): its pid, which names its group, cannot be reused until
// reap (cmd.Wait). Where the kernel has pidfds (Linux 5.4) the wait is the
// runtime poller's, so a command that sleeps (an approval, a deployment) holds
// no OS thread of the agent; else a thread blocks in waitid until it exits.
func watch(cmd *exec.Cmd) *process {
	p := &process{cmd: cmd, pid: cmd.Process.Pid, exited: make(chan struct{}), reap: cmd.Wait}
	pidfd := openPidfd(p.pid)
	go func() {
		defer close(p.exited)
		if pidfd != nil {
			defer pidfd.Close()
			if waitPidfd(pidfd) {
				return
			}
		}
		shim.WaitExited(p.pid)
	}()
	return p
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
// (drain closes it under a pending read), theirs blocking, as programs expect of their
// stdout. os.Pipe makes both ends pollable and exec makes theirs blocking again: eight
// fcntl and epoll_ctl calls per run more than this.
func outputPipe() (r, w *os.File, err error) {
	p, err := pipeOurs(0)
	if err != nil {
		return nil, nil, err
	}
	return os.NewFile(uintptr(p[0]), "|0"), os.NewFile(uintptr(p[1]), "|1"), nil
}

// pipeOurs is a close-on-exec pipe whose end ours (0: read, 1: write) alone is non-blocking:
// the child's end stays blocking, as exec passes it.
func pipeOurs(ours int) (p [2]int, err error) {
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return p, os.NewSyscallError("pipe2", err)
	}
	if _, err := unix.FcntlInt(uintptr(p[ours]), unix.F_SETFL, unix.O_NONBLOCK); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return p, os.NewSyscallError("fcntl", err)
	}
	return p, nil
}

//go:build unix && !linux

// Outside Linux (macOS, the BSDs) commands run under a plain process group.
// They lack these Linux guarantees:
//   - no exec shim and no Pdeathsig: if the agent is killed (SIGKILL, a
//     crash), its commands and their children keep running;
//   - a process that leaves the command's group (setsid, setpgid) is not
//     killed when the run ends, on exit or on timeout; it only loses the output
//     pipe after drainTimeout;
//   - the agent is not made non-dumpable, so processes of its uid may be able
//     to read its memory and environment (on macOS, ps -E): do not run real
//     credentials there;
//   - the command is reaped before its leftover group is killed, so in theory
//     the group id could be reused in between.
// `port-runner demo` works; production deployments should run on Linux.

package executor

import (
	"errors"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// childFD is the child's end of the output pipe.
type childFD = *os.File

// shimGates is false: no shim here, whatever Spec.Shim says, so Run passes Spec.Gate before
// the fork.
func shimGates(Spec) bool { return false }

// startProcess starts the prepared command with its stdout and stderr on out (no shim here).
func startProcess(spec Spec, prep prepared, _ *confined, out childFD) (*process, error) {
	cmd := &exec.Cmd{
		Path: prep.path, Args: spec.Argv, Env: prep.env, Dir: spec.Dir, Stdout: out, Stderr: out,
		// Own process group, so a timeout or cancel reaches everything the
		// command started, and nothing of the agent.
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	if f := nullInput(); f != nil {
		cmd.Stdin = f
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return watch(cmd), nil
}

// watch closes exited once cmd's process has been reaped: this platform has no
// portable wait that leaves it a zombie.
func watch(cmd *exec.Cmd) *process {
	p := &process{pid: cmd.Process.Pid, exited: make(chan struct{})}
	var waitErr error
	p.reap = func() (syscall.WaitStatus, error) {
		<-p.exited
		if ps := cmd.ProcessState; ps != nil { // an exit code is no error here
			if ws, ok := ps.Sys().(syscall.WaitStatus); ok {
				return ws, nil
			}
		}
		return 0, waitErr
	}
	go func() {
		waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p
}

// watching returns the channel closed once the process has exited: watched from its start
// here.
func (p *process) watching() <-chan struct{} { return p.exited }

// exitedNow says whether the process has exited (and been reaped: watch).
func (p *process) exitedNow() bool { return closed(p.exited) }

var errNoShim = errors.New("the exec shim is Linux-only")

// ShimFor finds no shim outside Linux: commands run without one.
func ShimFor(string) ([]string, string, error) { return nil, ShimNone, errNoShim }

// outputPipe is the command's output pipe (see the Linux one).
func outputPipe() (r *os.File, w childFD, err error) { return os.Pipe() }

// recvNow reads what socket fd holds now, never waiting (see the Linux one).
func recvNow(fd int, b []byte) (int, error) {
	n, _, err := unix.Recvfrom(fd, b, unix.MSG_DONTWAIT)
	return n, err
}

// stopped is never asked here: there is no shim (see process.killShim).
func stopped(int) bool { return false }

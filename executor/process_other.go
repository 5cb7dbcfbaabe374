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
)

func withDeathSignal(*syscall.SysProcAttr) (unlock func()) { return func() {} }

// watch closes exited once cmd's process has been reaped: this platform has no
// portable wait that leaves it a zombie.
func watch(cmd *exec.Cmd) *process {
	var waitErr error
	p := &process{cmd: cmd, pid: cmd.Process.Pid, exited: make(chan struct{})}
	p.reap = func() error {
		<-p.exited
		return waitErr
	}
	go func() {
		waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p
}

var errNoShim = errors.New("the exec shim is Linux-only")

func startShimmed(Spec, prepared, *confined, *os.File) (*process, error) { return nil, errNoShim }

// ShimFor finds no shim outside Linux: commands run without one.
func ShimFor(string) ([]string, string, error) { return nil, ShimNone, errNoShim }

// outputPipe is the command's output pipe (see the Linux one).
func outputPipe() (r, w *os.File, err error) { return os.Pipe() }

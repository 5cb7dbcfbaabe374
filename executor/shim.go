package executor

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"syscall"
	"time"
	"unsafe"
)

// ShimCommand is the hidden subcommand under which the agent's own binary runs as a
// command's shim (see RunShim). cmd/port-runner dispatches it before anything else.
const ShimCommand = "__port-runner-exec-shim"

const (
	// shimDeathSignal is the shim's Pdeathsig: the agent died.
	shimDeathSignal = syscall.SIGUSR2
	// shimKillSignal asks the shim to SIGKILL the command's group (the executor's
	// escalation after KillGrace; SIGKILL itself cannot be caught and passed on).
	shimKillSignal = syscall.SIGUSR1
	// shimDeathGrace is how long, after the agent died, the command's group gets between
	// SIGTERM and SIGKILL.
	shimDeathGrace = 5 * time.Second
	// shimStatusFD is where the executor's status pipe lands in the shim (ExtraFiles[0]).
	shimStatusFD = 3
)

// RunShim is the shim's main: args are "--", the resolved path, then the command's argv.
//
// Why a shim: Pdeathsig reaches only the agent's direct child, so without one a command's
// own children (a shell's `terraform apply`) would keep working after the agent died. The
// shim runs the command in a process group of its own and owns that group's end: it passes
// the executor's signals on, kills the group when asked, when the command's leader exits
// (as the executor does without a shim), and when the agent dies (its Pdeathsig). The shim
// stays out of the command's group, so killing the group never kills the shim before it
// has reported how the command ended.
func RunShim(args []string) int {
	if len(args) < 3 || args[0] != "--" {
		fmt.Fprintln(os.Stderr, "port-runner exec shim: usage: -- PATH ARGV0 [ARG...]")
		return 127
	}
	path, argv := args[1], args[2:]
	parent := os.Getppid()
	// fd 3 is the executor's status pipe: a start failure is written there, so Port shows
	// "could not start: ..." and not a made-up exit code. Close-on-exec keeps it from the
	// command, so the pipe closes with the shim.
	syscall.CloseOnExec(shimStatusFD)
	status := os.NewFile(shimStatusFD, "shim-status")

	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, shimKillSignal, shimDeathSignal)

	cmd := &exec.Cmd{
		Path: path, Args: argv, Env: os.Environ(), Stdout: os.Stdout, Stderr: os.Stderr,
		// If the shim itself is killed, the command's leader goes with it.
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL},
	}
	runtime.LockOSThread() // Pdeathsig follows the forking thread (see executor.Run)
	if err := cmd.Start(); err != nil {
		if _, werr := fmt.Fprint(status, err.Error()); werr != nil {
			fmt.Fprintf(os.Stderr, "could not start: %v\n", err) // no executor listening: say it in the log
		}
		return 127
	}
	status.Close()
	pgid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() {
		waitExitNoReap(pgid) // the leader stays unreaped, so pgid cannot be reused meanwhile
		close(exited)
	}()
	agentGone := func() {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		time.AfterFunc(shimDeathGrace, func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) })
	}
	if os.Getppid() != parent {
		agentGone() // the agent died while the command started
	}
	for {
		select {
		case <-exited:
			// The run is over when its command is: nothing of it may go on unobserved.
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			_ = cmd.Wait()
			return shimExit(cmd.ProcessState)
		case s := <-sigs:
			switch {
			case s == shimDeathSignal || os.Getppid() != parent:
				agentGone()
			case s == shimKillSignal:
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
			default:
				_ = syscall.Kill(-pgid, s.(syscall.Signal)) // the executor's SIGTERM, passed on
			}
		}
	}
}

// shimExit passes the command's end on: its exit code, or death by the same signal.
func shimExit(ps *os.ProcessState) int {
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if ok && ws.Signaled() {
		sig := ws.Signal()
		signal.Reset(sig)
		defaultDisposition(sig)
		_ = syscall.Kill(os.Getpid(), sig)
		time.Sleep(time.Second) // delivery is asynchronous; the signal ends us meanwhile
		return 128 + int(sig)   // if it did not, as a shell would report it
	}
	return ps.ExitCode()
}

// defaultDisposition sets sig back to SIG_DFL with rt_sigaction, because the Go runtime keeps
// its own handler for signals such as SIGSEGV even after signal.Reset. The kernel's struct
// sigaction is {handler, flags, restorer, mask} on amd64 and arm64 alike; handler 0 is SIG_DFL.
func defaultDisposition(sig syscall.Signal) {
	var act struct {
		handler, flags, restorer, mask uint64
	}
	_, _, _ = syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
}

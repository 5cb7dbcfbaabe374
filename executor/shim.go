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

// shimDeathSignal is the shim's Pdeathsig: a signal nothing else sends it, so the shim can
// tell "the agent died" from the group-wide SIGTERM of a timeout or cancel.
const shimDeathSignal = syscall.SIGUSR2

// shimDeathGrace is how long, after the agent died, the command's group gets between
// SIGTERM and SIGKILL.
const shimDeathGrace = 5 * time.Second

// RunShim is the shim's main: args are "--", the resolved path, then the command's argv.
//
// Why a shim: Pdeathsig reaches only the agent's direct child. Without the shim, a
// command's own children (a shell's `terraform apply`) would keep working after the agent
// died. The shim leads the command's process group, gets Pdeathsig, and on it takes the
// whole group down; otherwise it only waits and passes the command's exit status on.
func RunShim(args []string) int {
	if len(args) < 3 || args[0] != "--" {
		fmt.Fprintln(os.Stderr, "port-runner exec shim: usage: -- PATH ARGV0 [ARG...]")
		return 127
	}
	path, argv := args[1], args[2:]
	parent := os.Getppid()

	// The executor signals the whole group on timeout or cancel; the command gets those
	// signals itself, so the shim rides them out and reports how the command ended.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, shimDeathSignal)

	cmd := &exec.Cmd{Path: path, Args: argv, Env: os.Environ(), Stdin: nil, Stdout: os.Stdout, Stderr: os.Stderr}
	// The command stays in the shim's group (no Setpgid), so one kill reaches it all.
	runtime.LockOSThread() // Pdeathsig follows the forking thread (see executor.Run)
	err := cmd.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "could not start: %v\n", err)
		return 127
	}
	if os.Getppid() != parent {
		killOwnGroup() // the agent died while we started
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case <-done:
			return shimExit(cmd.ProcessState)
		case s := <-sigs:
			if s != shimDeathSignal && os.Getppid() == parent {
				continue // the executor's own group signal: the command has it too
			}
			killOwnGroup()
		}
	}
}

// killOwnGroup ends the command's process group after the agent died: SIGTERM, then SIGKILL
// after a grace period. The shim is in the group but ignores SIGTERM; the SIGKILL ends it too.
func killOwnGroup() {
	pgid := syscall.Getpgrp()
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	time.AfterFunc(shimDeathGrace, func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) })
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

//go:build linux

package shim

import "syscall"

// The shim's readers of the control socket: the gate's (before the command starts), then
// supervise's.

// awaitGo waits for the executor's go (GateFlag): "" once it came, else why the command must
// not start (end of file: the agent is gone; another byte: it said no). It reads that one
// byte only: what follows is supervise's.
func awaitGo() string {
	var b [1]byte
	for {
		n, err := syscall.Read(ControlFD, b[:])
		if err == syscall.EINTR {
			continue
		}
		if n == 1 && b[0] == Go {
			return ""
		}
		return NotStarted
	}
}

// readControl passes the executor's control bytes on, then evEOF when the agent is gone.
func readControl(events chan<- int) {
	var b [1]byte
	for {
		n, err := syscall.Read(ControlFD, b[:])
		if err == syscall.EINTR {
			continue
		}
		if n != 1 {
			events <- evEOF
			return
		}
		events <- int(b[0])
	}
}

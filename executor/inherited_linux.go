package executor

import (
	"math"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// SealInheritedFDs marks close-on-exec every descriptor from 3 on that the agent's own
// process inherited open across exec (what a container runtime, a service manager or a
// shell left it): every command would get them too, and none is a command's. Go opens its
// own close-on-exec, so only inherited ones change. Call it at start, before any run.
func SealInheritedFDs() error {
	if err := unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return nil
	}
	// Before Linux 5.11: each one open now.
	names, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, e := range names {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC) // ReadDir's own is closed: EBADF
		}
	}
	return nil
}

//go:build linux

package shim

import (
	"syscall"
	"unsafe"
)

// The fence (README "Delivery"): with --fence MS, no byte from the agent for MS
// milliseconds of CLOCK_BOOTTIME kills the command's tree.

// watchFence sends evFence once fenceNs have passed since the last renewal (start, then
// each time read from renewed). It wakes at least every fenceNs/8, so a pause of the whole
// machine (CLOCK_BOOTTIME goes on, the sleep's clock does not) is noticed that late at most.
func watchFence(fenceNs, start int64, renewed <-chan int64, events chan<- int) {
	last := start
	for {
		select {
		case t := <-renewed:
			last = t
		default:
		}
		left := last + fenceNs - boottime()
		if left <= 0 {
			events <- evFence
			return
		}
		sleep(min(left, max(fenceNs/8, 1e6)))
	}
}

// boottime is CLOCK_BOOTTIME in nanoseconds: monotonic, and it goes on while the machine is
// suspended.
func boottime() int64 {
	const clockMonotonic, clockBoottime = 1, 7
	var ts syscall.Timespec
	if _, _, e := syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, clockBoottime, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		// Kernels before 2.6.39: the monotonic clock, which a suspend pauses.
		_, _, _ = syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, clockMonotonic, uintptr(unsafe.Pointer(&ts)), 0)
	}
	return ts.Nano()
}

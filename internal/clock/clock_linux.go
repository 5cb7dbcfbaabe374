package clock

import "golang.org/x/sys/unix"

// boot is CLOCK_BOOTTIME in nanoseconds.
func boot() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) // kernels before 2.6.39
	}
	return ts.Nano()
}

//go:build linux

package shim

import (
	"syscall"
	"unsafe"
)

// The fence (README "Delivery"): with --fence MS, the command's tree is killed at a deadline
// of CLOCK_BOOTTIME: MS milliseconds after the start or the last Renew, or N after the last
// Lasting message "L<N>;". No other byte renews it.

// fence is supervise's side of the fence: it reads the renewals out of the control bytes
// and passes their deadlines to watchFence.
type fence struct {
	ns      int64
	renewed chan int64 // nil: no fence
	lasting lastingReader
}

// startFence starts watching the fence of fenceNs (none when 0), which sends evFence;
// renewalsFD (0: none) is the renewals pipe, read when the fence is looked at.
func startFence(fenceNs int64, renewalsFD int, events chan<- int) *fence {
	f := &fence{ns: fenceNs, lasting: newLastingReader()}
	if fenceNs > 0 {
		f.renewed = make(chan int64, 1)
		go watchFence(fenceNs, boottime(), f.renewed, renewalsFD, events)
	}
	return f
}

// control takes a control byte; used: it renewed the fence, or was part of an 'L' message,
// and means nothing else. Only a renewal renews: a Terminate the agent sends late (after a
// pause) must not give the command more time.
func (f *fence) control(b byte) (used bool) {
	used, ms, done := f.lasting.feed(b)
	switch {
	case done:
		f.renew(boottime() + ms*1e6)
	case !used && b == Renew:
		f.renew(boottime() + f.ns)
		return true
	}
	return used
}

func (f *fence) renew(deadline int64) {
	if f.renewed == nil {
		return
	}
	select { // one sender: after the drain there is room
	case <-f.renewed:
	default:
	}
	f.renewed <- deadline
}

// watchFence sends evFence once the fence's deadline has passed: fenceNs after start,
// then each one read from renewed (CLOCK_BOOTTIME, ns), or fenceNs after the previous look
// when the renewals pipe (renewalsFD > 0) held a renewal at this one: it was written after
// that look. It wakes at least every fenceNs/8, so a pause of the whole machine
// (CLOCK_BOOTTIME goes on, the sleep's clock does not) is noticed that late at most.
func watchFence(fenceNs, start int64, renewed <-chan int64, renewalsFD int, events chan<- int) {
	deadline, looked := start+fenceNs, start
	for {
		// The pipe first: an 'L' message read meanwhile was sent after the renewals there,
		// and its deadline (earlier or later) is the one that stands.
		now := boottime()
		if renewalsFD > 0 && readRenewals(renewalsFD) {
			deadline = max(deadline, looked+fenceNs)
		}
		looked = now
		select {
		case d := <-renewed:
			deadline = d
		default:
		}
		left := deadline - now
		if left <= 0 {
			events <- evFence
			return
		}
		sleep(min(left, max(fenceNs/8, 1e6)))
	}
}

// readRenewals empties the renewals pipe (non-blocking) and says whether it held a Renew.
func readRenewals(fd int) (renewed bool) {
	var b [64]byte
	for {
		n, err := syscall.Read(fd, b[:])
		if err == syscall.EINTR {
			continue
		}
		for _, c := range b[:max(n, 0)] {
			renewed = renewed || c == Renew
		}
		if n < len(b) { // empty (EAGAIN), closed (the agent is gone), or drained
			return renewed
		}
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

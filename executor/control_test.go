//go:build linux

package executor

import (
	"bytes"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// shimNotReading is a process whose control socket is full, as a shim's is when it stops
// reading (its command stopped it, say) and renewals filled it: ours blocking, as
// startShimmed makes it, and the shim's end (peer) pollable, for the test to drain.
func shimNotReading(t *testing.T) (p *process, peer *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.SetNonblock(fds[1], true); err != nil {
		t.Fatal(err)
	}
	peer = os.NewFile(uintptr(fds[1]), "shim")
	p = &process{exited: make(chan struct{}), ctl: controlSocket{fd: fds[0], set: true}}
	filler := make([]byte, 4096)
	for {
		_, err := unix.SendmsgN(fds[0], filler, nil, nil, unix.MSG_DONTWAIT)
		if err == unix.EAGAIN {
			return p, peer
		}
		if err != nil && err != unix.EINTR {
			t.Fatal(err)
		}
	}
}

// sendTerminate sends 'T' as terminate does, in a goroutine: done is closed once control
// has returned, which it must not have after a few of its retries. The cleanup closes the
// shim's end first, which fails control's next send (EPIPE), so a failing test leaves no
// goroutine behind.
func sendTerminate(t *testing.T, p *process, peer *os.File) (done chan struct{}) {
	t.Helper()
	done = make(chan struct{})
	t.Cleanup(func() {
		peer.Close()
		<-done
		_ = unix.Close(p.ctl.fd)
	})
	go func() {
		defer close(done)
		p.control('T')
	}()
	select { // a window, not a synchronisation: a slow machine only checks less
	case <-done:
		t.Fatal("control returned: the socket is full and the shim has not exited")
	case <-time.After(5 * controlRetry):
	}
	return done
}

// TestControlWaitsForAFullSocketUntilTheShimExits: terminate and kill wait for room on the
// shim's control socket, but a shim that never reads again (stopped, or stuck in waitpid)
// must not hold them, nor an OS thread, for ever: once it has exited they return.
func TestControlWaitsForAFullSocketUntilTheShimExits(t *testing.T) {
	p, peer := shimNotReading(t)
	done := sendTerminate(t, p, peer)
	close(p.exited)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("control still blocked on the full socket 10s after the shim exited")
	}
}

// TestControlSendsOnceTheShimReads: a control byte that found the socket full is sent
// once the shim reads again, not dropped.
func TestControlSendsOnceTheShimReads(t *testing.T) {
	p, peer := shimNotReading(t)
	done := sendTerminate(t, p, peer)
	_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64<<10)
	for {
		n, err := peer.Read(buf)
		if bytes.IndexByte(buf[:n], 'T') >= 0 {
			break
		}
		if err != nil {
			t.Fatalf("the shim got no 'T' after reading everything before it: %v", err)
		}
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("control did not return after sending")
	}
}

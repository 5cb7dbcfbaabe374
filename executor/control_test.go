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
// reading (its command stopped it, say) and lasting renewals filled it: ours blocking, as
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

// TestAControlByteAFullSocketRefusedIsSentOnceTheShimReads: a 'T' that found the shim's
// socket full is sent again until the shim reads, not dropped, and never waits meanwhile.
func TestAControlByteAFullSocketRefusedIsSentOnceTheShimReads(t *testing.T) {
	p, peer := shimNotReading(t)
	defer unix.Close(p.ctl.fd)
	defer peer.Close()
	e := &ending{p: p, grace: time.Hour}
	defer e.stop()
	e.start()
	if e.unsent != 'T' {
		t.Fatalf("the full socket took the 'T' (unsent %q)", e.unsent)
	}
	got := make(chan error, 1)
	go func() { // the shim reads again
		_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 64<<10)
		for {
			n, err := peer.Read(buf)
			if bytes.IndexByte(buf[:n], 'T') >= 0 || err != nil {
				got <- err
				return
			}
		}
	}()
	for {
		select {
		case err := <-got:
			if err != nil {
				t.Fatalf("the shim got no 'T' after reading everything before it: %v", err)
			}
			return
		case <-e.C():
			e.fired()
		}
	}
}

// TestTheKillStepsComeOnTimeWhileTheSocketIsFull: a shim that reads no more (stopped) holds
// up none of the ending's steps: SIGKILL comes after the grace, the shim's own kill after
// shimKillWait.
func TestTheKillStepsComeOnTimeWhileTheSocketIsFull(t *testing.T) {
	p, peer := shimNotReading(t)
	defer unix.Close(p.ctl.fd)
	defer peer.Close()
	e := &ending{p: p, grace: 50 * time.Millisecond}
	defer e.stop()
	start := time.Now()
	e.start()
	deadline := time.After(shimKillWait + 10*time.Second)
	for e.step < 3 {
		select {
		case <-e.C():
			e.fired()
		case <-deadline:
			t.Fatalf("step %d after %v; want the shim killed", e.step, time.Since(start))
		}
		if e.step == 2 && e.unsent != 'K' {
			t.Fatalf("the full socket took the 'K' (unsent %q)", e.unsent)
		}
	}
	if took := time.Since(start); took < e.grace+shimKillWait {
		t.Errorf("the shim was killed %v after the start, before the grace and shimKillWait", took)
	}
}

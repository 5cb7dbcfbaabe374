//go:build linux

package executor

import (
	"bytes"
	"os"
	"os/exec"
	"syscall"
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
	shimReads(t, peer, e, 'T')
}

// shimReads reads the shim's end (peer) of a full socket, as a shim that reads again, until
// b comes; e goes on meanwhile.
func shimReads(t *testing.T, peer *os.File, e *ending, b byte) {
	t.Helper()
	got := make(chan error, 1)
	go func() {
		_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 64<<10)
		for {
			n, err := peer.Read(buf)
			if bytes.IndexByte(buf[:n], b) >= 0 || err != nil {
				got <- err
				return
			}
		}
	}()
	for {
		select {
		case err := <-got:
			if err != nil {
				t.Fatalf("the shim got no %q after reading everything before it: %v", b, err)
			}
			return
		case <-e.C():
			e.fired()
		}
	}
}

// standIn is a process of the test's in a group of its own, standing in for a shim: sh -c
// script. It stays unreaped until the test's end, as a shim stays until Run reaps it.
func standIn(t *testing.T, script string) (pid int) {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid = cmd.Process.Pid
	t.Cleanup(func() {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	return pid
}

// keptStopped is what a shim its command keeps stopped is like: resumed, it stops again.
const keptStopped = "while :; do kill -STOP $$; done"

// TestTheKillStepsComeOnTimeWhileTheSocketIsFull: a shim that reads no more (stopped) holds
// up none of the ending's steps: SIGKILL comes after the grace, the shim's own kill after
// shimKillWait.
func TestTheKillStepsComeOnTimeWhileTheSocketIsFull(t *testing.T) {
	p, peer := shimNotReading(t)
	defer unix.Close(p.ctl.fd)
	defer peer.Close()
	p.pid = standIn(t, keptStopped)
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
	waitFor(t, 10*time.Second, "the stopped shim to die", func() bool { return processGone(p.pid) })
}

// TestARunningShimIsLeftToEndItsCommand: a shim told to kill its command that has not ended
// it shimKillWait later, but runs (reaping a large tree, say), is not killed: the tree would
// outlive the run. Once its command has stopped it, it is.
func TestARunningShimIsLeftToEndItsCommand(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	p := &process{pid: standIn(t, "exec sleep 60"), exited: make(chan struct{}), ctl: controlSocket{fd: fds[0], set: true}}
	e := &ending{p: p, grace: 10 * time.Millisecond}
	defer e.stop()
	e.start()
	// step waits until the ending is at step want, at 2 with a due after the one given.
	step := func(want int, after time.Time) {
		t.Helper()
		deadline := time.After(shimKillWait + 10*time.Second)
		for e.step != want || want == 2 && !e.due.After(after) {
			if e.step > want {
				t.Fatalf("step %d, want %d: the shim killed", e.step, want)
			}
			select {
			case <-e.C():
				e.fired()
			case <-deadline:
				t.Fatalf("step %d, want %d", e.step, want)
			}
		}
	}
	step(2, time.Time{})
	killed := e.due
	step(2, killed) // looked at it once
	if processGone(p.pid) {
		t.Fatal("the running shim was killed")
	}
	if err := syscall.Kill(p.pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the shim to stop", func() bool { return stopped(p.pid) })
	step(3, time.Time{})
	waitFor(t, 10*time.Second, "the stopped shim to die", func() bool { return processGone(p.pid) })
}

// TestAKillTheSocketRefusedIsSentStillWhileTheShimRuns: a 'K' the shim's full socket
// refused is sent again after the ending has found the shim running (not killed), until
// the shim reads: else a shim resumed with a full socket never hears it.
func TestAKillTheSocketRefusedIsSentStillWhileTheShimRuns(t *testing.T) {
	p, peer := shimNotReading(t)
	defer unix.Close(p.ctl.fd)
	defer peer.Close()
	p.pid = standIn(t, "exec sleep 60")
	e := &ending{p: p, grace: 10 * time.Millisecond}
	defer e.stop()
	e.start()
	var killed time.Time
	deadline := time.After(shimKillWait + 10*time.Second)
	for killed.IsZero() || !e.due.After(killed) { // until it has looked at the shim once
		select {
		case <-e.C():
			e.fired()
		case <-deadline:
			t.Fatalf("step %d", e.step)
		}
		if e.step == 2 && killed.IsZero() {
			killed = e.due
		}
	}
	if e.step != 2 || e.unsent != 'K' {
		t.Fatalf("step %d, unsent %q; want the 'K' still to send", e.step, e.unsent)
	}
	shimReads(t, peer, e, 'K')
}

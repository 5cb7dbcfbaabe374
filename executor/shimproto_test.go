package executor

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// shimProc is a shim started by hand, the test holding the executor's end of its control
// socket: the protocol itself (internal/shim), which both shims speak, without the executor.
type shimProc struct {
	cmd  *exec.Cmd
	ctl  *os.File
	done chan struct{}
}

// controlSockets is a connected pair of unix stream sockets, both close-on-exec: the
// executor's end of a shim's control socket and the shim's; nonblocking, both are served by
// the runtime's poller (read deadlines). Made as os/exec makes its pipes where there is no
// SOCK_CLOEXEC (macOS): under ForkLock, so no fork meanwhile inherits them.
func controlSockets(t *testing.T, nonblocking bool) (ours, theirs *os.File) {
	t.Helper()
	syscall.ForkLock.RLock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if err := syscall.SetNonblock(fd, nonblocking); err != nil {
			t.Fatal(err)
		}
	}
	return os.NewFile(uintptr(fds[0]), "ctl"), os.NewFile(uintptr(fds[1]), "shim")
}

// controlOf is f (one of controlSockets) as a process's control socket; f stays its owner.
func controlOf(t *testing.T, f *os.File) controlSocket {
	t.Helper()
	rc, err := f.SyscallConn() // not f.Fd(), which would make it blocking
	if err != nil {
		t.Fatal(err)
	}
	var c controlSocket
	if err := rc.Control(func(fd uintptr) { c = controlSocket{fd: int(fd), set: true} }); err != nil {
		t.Fatal(err)
	}
	return c
}

func startShim(t *testing.T, prefix []string, uid int, args ...string) *shimProc {
	t.Helper()
	return startShimWith(t, prefix, uid, nil, args...)
}

// startShimWith is startShim with more files for the shim after its control socket (fd 4...).
func startShimWith(t *testing.T, prefix []string, uid int, more []*os.File, args ...string) *shimProc {
	t.Helper()
	ours, theirs := controlSockets(t, false)
	defer theirs.Close()
	cmd := exec.Command(prefix[0], append(prefix[1:len(prefix):len(prefix)], args...)...)
	cmd.ExtraFiles = append([]*os.File{theirs}, more...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if uid > 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &shimProc{cmd: cmd, ctl: ours, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		ours.Close() // end of file: the shim ends its command
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			t.Errorf("shim %d still running 30s after its control socket closed", cmd.Process.Pid)
		}
	})
	return p
}

// wait is the shim's end and what it wrote to the control socket.
func (p *shimProc) wait(t *testing.T, within time.Duration) (syscall.WaitStatus, string) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("the shim did not end within %s", within)
	}
	msg, _ := io.ReadAll(p.ctl)
	return p.cmd.ProcessState.Sys().(syscall.WaitStatus), string(msg)
}

// TestShimRefusesTheAgentsOwnIDs: a run's uid is never root nor the shim's own: the command
// would reach the agent and every run of it.
func TestShimRefusesTheAgentsOwnIDs(t *testing.T) {
	eachShim(t, func(t *testing.T, prefix []string) {
		p := startShim(t, prefix, 0, "--ids", "0:0", "--", "/bin/true", "true")
		if ws, _ := p.wait(t, 20*time.Second); ws.ExitStatus() != 127 {
			t.Errorf("--ids 0:0: %v, want the usage error (127)", ws)
		}
		if os.Getuid() != 0 {
			t.Skip("not checked: the shim as another uid needs root here")
		}
		own := strconv.Itoa(testAgentUID)
		p = startShim(t, sharedPrefix(t, prefix), testAgentUID, "--ids", own+":"+own, "--", "/bin/true", "true")
		if ws, msg := p.wait(t, 20*time.Second); ws.ExitStatus() != 127 || !strings.Contains(msg, "the agent's own") {
			t.Errorf("--ids of the shim's own uid: %v %q, want could not start: ... the agent's own", ws, msg)
		}
	})
}

// TestShimFence: without a byte from the agent for the fence, the shim kills the command's
// tree, never before the fence has passed; renewals keep the command to its own end.
func TestShimFence(t *testing.T) {
	eachShim(t, func(t *testing.T, prefix []string) {
		start := time.Now()
		p := startShim(t, prefix, 0, "--fence", "300", "--", "/bin/sh", "sh", "-c", "trap '' TERM; sleep 60")
		ws, _ := p.wait(t, 30*time.Second)
		if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Errorf("unrenewed: %v, want killed by SIGKILL", ws)
		}
		if took := time.Since(start); took < 300*time.Millisecond {
			t.Errorf("the fence fired after %s, before its 300ms", took)
		}

		over := filepath.Join(t.TempDir(), "over")
		p = startShim(t, prefix, 0, "--fence", "1000", "--", "/bin/sh", "sh", "-c", `while [ ! -e "$1" ]; do sleep 0.05; done`, "sh", over)
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if _, err := p.ctl.Write([]byte{'R'}); err != nil {
				t.Fatalf("renew: %v (the shim ended early)", err)
			}
		}
		if err := os.WriteFile(over, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		for { // renewing until the command has ended on its own
			if _, err := p.ctl.Write([]byte{'R'}); err != nil {
				break
			}
			select {
			case <-p.done:
			case <-time.After(50 * time.Millisecond):
				continue
			}
			break
		}
		if ws, _ := p.wait(t, 30*time.Second); ws.Signaled() || ws.ExitStatus() != 0 {
			t.Errorf("renewed for 3 fences: %v, want the command's own exit 0", ws)
		}
	})
}

// TestControlReportWaitsForTheLastCopyOfTheShimsEnd: the shim's report is read once it has
// exited, without the runtime's poller; a copy of its end that a process the agent forked
// meanwhile still holds delays the end of file, and the report still comes whole.
func TestControlReportWaitsForTheLastCopyOfTheShimsEnd(t *testing.T) {
	ours, shimEnd := controlSockets(t, false)
	defer ours.Close()
	if _, err := shimEnd.Write([]byte("could not ")); err != nil {
		t.Fatal(err)
	}
	copyFD, err := syscall.Dup(int(shimEnd.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	shimEnd.Close() // the shim has exited; copyFD is the forked process's copy
	// Taken here, not in report's goroutine: its t.Fatal must run on the test's own.
	ctl := controlOf(t, ours)
	got := make(chan string, 1)
	go func() { got <- ctl.report() }()
	select { // a window, not a synchronisation: a slow machine only checks less
	case msg := <-got:
		t.Fatalf("report %q before the last copy of the shim's end closed", msg)
	case <-time.After(50 * time.Millisecond):
	}
	if _, err := syscall.Write(copyFD, []byte("start")); err != nil {
		t.Fatal(err)
	}
	syscall.Close(copyFD)
	select {
	case msg := <-got:
		if msg != "could not start" {
			t.Errorf("report %q, want %q", msg, "could not start")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("report still waiting 20s after the last copy of the shim's end closed")
	}
}

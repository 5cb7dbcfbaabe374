package executor

import (
	"bufio"
	"context"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// osThreads is how many OS threads this process has.
func osThreads(t *testing.T) int {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no Threads line in /proc/self/status")
	return 0
}

// A command waiting for something (an approval, a deployment) must not hold an OS thread of
// the agent: a thousand of them would be a thousand threads, each read by every sweep of the
// reaper. Commands under the shim are waited for in the runtime's poller (a pidfd).
func TestSleepingCommandsHoldNoThread(t *testing.T) {
	const n = 64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	before := osThreads(t)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for i := range n {
		started := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := Run(ctx, Spec{Argv: []string{"sleep", "60"}, Shim: []string{tinyShim}, KillGrace: time.Second,
				OnStart: func(int) { close(started) }}, nil)
			if res.Success {
				t.Errorf("a cancelled sleep succeeded: %+v", res)
			}
		}()
		// One start at a time: concurrent forks may make threads of their own, which the
		// runtime keeps; this is about what a started command holds.
		select {
		case <-started:
		case <-time.After(time.Minute):
			t.Fatalf("command %d did not start", i)
		}
	}
	if got := osThreads(t); got-before >= n/2 {
		t.Errorf("%d sleeping commands: %d OS threads, %d before them; want fewer than %d more", n, got, before, n/2)
	}
}

// pidfdsOf counts this process's pidfds of pid (each pidfd's fdinfo names its process).
func pidfdsOf(t *testing.T, pid int) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fd := range fds {
		if link, _ := os.Readlink("/proc/self/fd/" + fd.Name()); link != "anon_inode:[pidfd]" {
			continue
		}
		info, _ := os.ReadFile("/proc/self/fdinfo/" + fd.Name())
		if strings.Contains(string(info), "\nPid:\t"+strconv.Itoa(pid)+"\n") {
			n++
		}
	}
	return n
}

// TestOnePidfdPerCommand: the agent holds one pidfd of each process it starts, the one the
// kernel made with it, which watch waits on (it held two: os.StartProcess kept its own).
func TestOnePidfdPerCommand(t *testing.T) {
	for name, prefix := range map[string][]string{"no shim": nil, "shim": {tinyShim}} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			held := -1
			res := Run(ctx, Spec{Argv: []string{"sleep", "60"}, Shim: prefix, KillGrace: time.Second,
				OnStart: func(pid int) { held = pidfdsOf(t, pid); cancel() }}, nil)
			if held != 1 || res.Success {
				t.Errorf("pidfds held of the started process: %d, want 1 (result %+v)", held, res)
			}
		})
	}
}

// TestWatchWithoutClonePidfd: where the kernel made no pidfd with the child (before Linux
// 5.2, or refused by a seccomp filter), watch opens one, and the exit is still seen and
// reaped with its status.
func TestWatchWithoutClonePidfd(t *testing.T) {
	pid, err := syscall.ForkExec("/bin/sh", []string{"sh", "-c", "exit 7"}, &syscall.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	p := watch(pid, -1)
	select {
	case <-p.exited:
	case <-time.After(time.Minute):
		t.Fatal("exit not seen")
	}
	if ws, err := p.reapPid(); err != nil || ws.ExitStatus() != 7 {
		t.Errorf("reaped: %v %v, want exit status 7", ws, err)
	}
}

// TestFinishKillsWhatIsLeftOfAShimsGroup: a shim that exited by itself may leave a process
// in its group (one of the command's that joined it with setpgid, which the C shim's
// reap_all gives up on when it cannot see it in /proc): finish kills the group in every
// case, so nothing of the run outlives it. Here the "shim" leaves an orphan in its group
// holding its stdout, which ends once the orphan has been killed.
func TestFinishKillsWhatIsLeftOfAShimsGroup(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ours, shimEnd := controlSockets(t, false)
	defer ours.Close()
	shimEnd.Close() // the shim's report: none, at once
	pidfd := -1
	pid, err := syscall.ForkExec("/bin/sh", []string{"sh", "-c", "sleep 1000 & exit 0"}, &syscall.ProcAttr{
		Files: []uintptr{0, w.Fd(), 2}, Sys: &syscall.SysProcAttr{Setpgid: true, PidFD: &pidfd}})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	p := watch(pid, pidfd)
	p.ctl = controlOf(t, ours)
	select {
	case <-p.exited:
	case <-time.After(time.Minute):
		t.Fatal("exit not seen")
	}
	if res := p.finish(); !res.Success {
		t.Errorf("finish: %+v, want the shim's exit 0", res)
	}
	_ = r.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := r.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		_ = syscall.Kill(-pid, syscall.SIGKILL) // this test's own orphan
		t.Fatalf("a process left in the shim's group outlived its run: read %d, %v", n, err)
	}
}

package executor

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// renewalsPipeFor starts a shim with a fence of fenceMs whose renewals come on a pipe (fd 4),
// running a command that makes the file it returns once it runs, then ignores SIGTERM and
// sleeps; it returns the shim and the pipe's write end. The pipe renews the fence every
// eighth of it until the command runs: the fence counts from the command's start, which a
// loaded machine may see only late.
func renewalsPipeFor(t *testing.T, prefix []string, fenceMs int) (*shimProc, *os.File, string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	running := filepath.Join(t.TempDir(), "running")
	p := startShimWith(t, prefix, 0, []*os.File{r}, "--fence", strconv.Itoa(fenceMs), "--renewals", "4",
		"--", "/bin/sh", "sh", "-c", `trap '' TERM; : > "$1"; sleep 60`, "sh", running)
	r.Close()
	runs := make(chan struct{})
	var renewing sync.WaitGroup
	renewing.Go(func() {
		tick := time.NewTicker(time.Duration(fenceMs) * time.Millisecond / 8)
		defer tick.Stop()
		for {
			select {
			case <-runs:
				return
			case <-tick.C:
				_, _ = w.Write([]byte{'R'})
			}
		}
	})
	defer renewing.Wait()
	defer close(runs)
	waitFor(t, 30*time.Second, "the command to run", func() bool {
		_, err := os.Stat(running)
		return err == nil
	})
	return p, w, running
}

// TestShimRenewalsPipe: renewals written to the renewals pipe keep the command alive past
// many fences; once they stop, the fence kills it, never before seven eighths of the fence
// after the last one (the shim reads the pipe when it looks, every eighth of the fence),
// less the time the shim waited for a CPU meanwhile: a look that comes late credits the
// renewal it reads from the look before, so a starved shim fires that much sooner (never
// later). On a quiet machine that wait is nil, and the bound is the shim's own.
func TestShimRenewalsPipe(t *testing.T) {
	eachShim(t, func(t *testing.T, prefix []string) {
		const fence = 800 * time.Millisecond
		p, w, _ := renewalsPipeFor(t, prefix, int(fence.Milliseconds()))
		shim := &runQueue{pid: p.cmd.Process.Pid, seen: map[string]int64{}}
		last := time.Now()
		waits := []time.Duration{shim.waited()} // the shim's wait for a CPU so far, at each renewal
		for end := time.Now().Add(3 * fence); time.Now().Before(end); time.Sleep(fence / 8) {
			select {
			case <-p.done:
				t.Fatalf("the command ended though renewed on the pipe, %s after the last renewal (the shim waited %s for a CPU meanwhile)",
					time.Since(last), shim.waited()-waits[len(waits)-1])
			default:
			}
			waits = append(waits, shim.waited())
			last = time.Now() // before the write: the shim cannot have read it earlier
			if _, err := w.Write([]byte{'R'}); err != nil {
				t.Fatal(err)
			}
		}
		// Since the look before the one that read the renewal before the last: two renewals.
		since, waited := waits[max(len(waits)-3, 0)], time.Duration(0)
		deadline := time.After(30 * time.Second)
		for ended := false; !ended; {
			select {
			case <-p.done:
				ended = true
			case <-time.After(10 * time.Millisecond):
				waited = shim.waited() - since
			case <-deadline:
				t.Fatal("the shim did not end within 30s of its last renewal")
			}
		}
		took := time.Since(last)
		ws := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Errorf("renewals stopped: %v, want killed by SIGKILL at the fence", ws)
		}
		t.Logf("the fence fired %s after the last renewal; the shim waited %s for a CPU meanwhile", took, waited)
		if took < fence*7/8-waited {
			t.Errorf("the fence fired %s after the last renewal, before 7/8 of its %s (less the %s the shim waited for a CPU)", took, fence, waited)
		}
	})
}

// runQueue is how long a process's threads have waited for a CPU while runnable (their
// schedstat's run delays), each thread's as last seen: the sum does not drop when one ends.
type runQueue struct {
	pid  int
	seen map[string]int64
}

// waited is the sum so far, as of now.
func (r *runQueue) waited() time.Duration {
	dir := "/proc/" + strconv.Itoa(r.pid) + "/task/"
	tasks, _ := os.ReadDir(dir) // none once it has ended
	for _, task := range tasks {
		b, err := os.ReadFile(dir + task.Name() + "/schedstat") // on-CPU ns, run-queue ns, slices
		if f := strings.Fields(string(b)); err == nil && len(f) == 3 {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			r.seen[task.Name()] = max(r.seen[task.Name()], n)
		}
	}
	var ns int64
	for _, n := range r.seen {
		ns += n
	}
	return time.Duration(ns)
}

// shimWakeups is how often the shim's threads have waited and been woken so far.
func shimWakeups(t *testing.T, pid int) int {
	t.Helper()
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + task.Name() + "/status")
		if err != nil {
			continue // the thread ended
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
				c, _ := strconv.Atoi(strings.TrimSpace(v))
				n += c
			}
		}
	}
	return n
}

// unread is how many bytes written to the unix socket f its peer has not read yet.
func unread(t *testing.T, f *os.File) int {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := rc.Control(func(fd uintptr) { n, err = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) }); err != nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatalf("SIOCOUTQ: %v", err)
	}
	return n
}

// TestRenewalsOnThePipeWakeNoShim: a renewal on the control socket wakes the shim (it waits
// on it for the agent's commands), one on the renewals pipe does not: a thousand sleeping
// commands' renewals then cost the agent a write each, not a wake-up of another process.
func TestRenewalsOnThePipeWakeNoShim(t *testing.T) {
	eachShim(t, func(t *testing.T, prefix []string) {
		const renewals = 40
		p, w, _ := renewalsPipeFor(t, prefix, 60_000) // looks at the fence every 7.5s
		pid := p.cmd.Process.Pid
		count := func(write func() error) int {
			before := shimWakeups(t, pid)
			for range renewals {
				if err := write(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(10 * time.Millisecond) // apart, so that each could wake the shim
			}
			return shimWakeups(t, pid) - before
		}
		onSocket := count(func() error {
			if _, err := p.ctl.Write([]byte{'R'}); err != nil {
				return err
			}
			waitFor(t, 30*time.Second, "the shim to read the renewal", func() bool { return unread(t, p.ctl) == 0 })
			return nil
		})
		onPipe := count(func() error { _, err := w.Write([]byte{'R'}); return err })
		defer p.ctl.Write([]byte{'K'}) // its command ignores SIGTERM: no death grace to wait
		t.Logf("wake-ups: %d on the socket, %d on the pipe", onSocket, onPipe)
		if onSocket < renewals/4 {
			t.Fatalf("%d renewals on the control socket woke the shim %d times: the count does not see wake-ups", renewals, onSocket)
		}
		if onPipe >= renewals/8 {
			t.Errorf("%d renewals on the renewals pipe woke the shim %d times (on the socket: %d), want almost none", renewals, onPipe, onSocket)
		}
	})
}

// TestShimRefusesABadRenewalsFD: both shims take the renewals pipe only at fd 4 or 5, not at
// the ruleset's fd, and only an open one.
func TestShimRefusesABadRenewalsFD(t *testing.T) {
	eachShim(t, func(t *testing.T, prefix []string) {
		for _, args := range [][]string{
			{"--renewals", "3"},
			{"--renewals", "6"},
			{"--renewals", "x"},
			{"--renewals", "4", "--landlock", "4:1"},
			{"--landlock", "4:1", "--renewals", "4"},
		} {
			p := startShim(t, prefix, 0, append(args, "--", "/bin/true", "true")...)
			if ws, _ := p.wait(t, 20*time.Second); ws.ExitStatus() != 127 {
				t.Errorf("%q: %v, want the usage error (127)", args, ws)
			}
		}
		// fd 4 not open: no renewal could ever come, so the command does not start.
		p := startShim(t, prefix, 0, "--fence", "60000", "--renewals", "4", "--", "/bin/true", "true")
		if ws, msg := p.wait(t, 20*time.Second); ws.ExitStatus() != 127 || !strings.Contains(msg, "--renewals") {
			t.Errorf("--renewals of a closed fd: %v %q, want could not start: --renewals: ...", ws, msg)
		}
	})
}

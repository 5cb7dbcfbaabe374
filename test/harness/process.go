//go:build linux

package harness

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/waitcond"
)

// stopGrace is how long a process still running when its test ends gets after SIGTERM.
const stopGrace = 30 * time.Second

// Processes starts one test's agent processes. Each dies with the test process (Pdeathsig,
// forked from one thread locked for the whole test: the signal fires when the forking
// thread exits, and the Go runtime retires threads), is stopped when the test ends, and has
// the tail of its log printed if the test failed.
type Processes struct {
	t      testing.TB
	logDir string
	spawn  chan func()

	mu    sync.Mutex
	procs []*Process
}

// Process is one agent process.
type Process struct {
	Name    string
	LogPath string
	Cmd     *exec.Cmd

	mu       sync.Mutex
	signaled bool // the test signalled it: its exit is expected
	done     chan struct{}
	state    *os.ProcessState
	exitTime time.Time
}

// ProcessOptions are how a process differs from the default: PATH, HOME and
// PORT_RUNNER_LOG_LEVEL=info as its whole environment, the test's working directory.
type ProcessOptions struct {
	Env      []string // added to the environment
	Home     string   // HOME and the working directory (default: $HOME, or a temporary one)
	AsNobody bool     // uid and gid 65534 when the test runs as root
	// Wrap is a command line the agent's is appended to, started as the test's own uid: one
	// that sets the agent's credentials itself (setpriv, for capabilities a non-root agent
	// keeps as ambient ones) or its cgroup before it execs the agent. A credential change
	// clears Pdeathsig: the test's cleanup still stops it.
	Wrap []string
}

// NewProcesses starts the locked spawner thread; the test's cleanup ends it after every
// process.
func NewProcesses(t testing.TB) *Processes {
	ps := &Processes{t: t, logDir: t.TempDir(), spawn: make(chan func())}
	spawnerDone := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for fn := range ps.spawn {
			fn()
		}
		close(spawnerDone)
	}()
	// Cleanups run last-registered first: this one runs after every process was stopped.
	t.Cleanup(func() { close(ps.spawn); <-spawnerDone })
	t.Cleanup(ps.printLogsOnFailure)
	return ps
}

// Agent starts `bin run --config cfgPath` as name, its output in a log file of its own.
func (ps *Processes) Agent(name, bin, cfgPath string, o ProcessOptions) *Process {
	ps.t.Helper()
	p := &Process{Name: name, LogPath: filepath.Join(ps.logDir, name+".log"), done: make(chan struct{})}
	logFile, err := os.Create(p.LogPath)
	if err != nil {
		ps.t.Fatal(err)
	}
	home := o.Home
	if home == "" {
		if home = os.Getenv("HOME"); home == "" {
			home = ps.t.TempDir()
		}
	}
	argv := append(append([]string{}, o.Wrap...), bin, "run", "--config", cfgPath)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = home
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "PORT_RUNNER_LOG_LEVEL=info"}, o.Env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if o.AsNobody && os.Getuid() == 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 65534, Gid: 65534}
	}
	started := make(chan error)
	ps.spawn <- func() { started <- cmd.Start() }
	if err := <-started; err != nil {
		logFile.Close()
		ps.t.Fatalf("harness: starting agent %s: %v", name, err)
	}
	p.Cmd = cmd
	go func() {
		_ = cmd.Wait()
		p.mu.Lock()
		p.exitTime, p.state = time.Now(), cmd.ProcessState
		p.mu.Unlock()
		logFile.Close()
		close(p.done)
	}()
	ps.t.Cleanup(func() { p.stop(stopGrace) })
	ps.mu.Lock()
	ps.procs = append(ps.procs, p)
	ps.mu.Unlock()
	ps.t.Logf("agent %s started (pid %d), log %s", name, cmd.Process.Pid, p.LogPath)
	return p
}

// MetricsAddr waits until the agent serves its metrics (metrics.addr 127.0.0.1:0) and
// returns the address it logged.
func (ps *Processes) MetricsAddr(p *Process, timeout time.Duration) string {
	ps.t.Helper()
	var addr string
	ps.WaitFor("agent "+p.Name+" to serve its metrics", timeout, func() bool {
		for _, line := range strings.Split(p.Log(), "\n") {
			var l struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "serving metrics server" && l.Addr != "" {
				addr = l.Addr
				return true
			}
		}
		return false
	})
	return addr
}

// Pid is the process's id.
func (p *Process) Pid() int { return p.Cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Signal sends sig; the process may exit without failing Processes.WaitFor.
func (p *Process) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	p.mu.Lock()
	p.signaled = true
	p.mu.Unlock()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		t.Errorf("harness: %s to agent %s: %v", sig, p.Name, err)
	}
}

// Wait reports whether the process exited within timeout.
func (p *Process) Wait(timeout time.Duration) bool {
	timer := time.NewTimer(max(timeout, 0))
	defer timer.Stop()
	select {
	case <-p.done:
		return true
	case <-timer.C:
		return false
	}
}

// State is how the process ended and when (nil before it has).
func (p *Process) State() (*os.ProcessState, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state, p.exitTime
}

// WantExit0 fails t if the process exited with another status.
func (p *Process) WantExit0(t testing.TB) {
	t.Helper()
	if st, _ := p.State(); st != nil && st.ExitCode() != 0 {
		t.Errorf("agent %s: %s, want exit status 0", p.Name, st)
	}
}

// Log is the process's output so far.
func (p *Process) Log() string {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

var metricsAddr = regexp.MustCompile(`"serving metrics server".*"addr":"([^"]+)"`)

// MetricsURL is the base URL of the process's metrics server, once it serves: the address
// it logs, as a user reads it.
func (p *Process) MetricsURL(t testing.TB) string {
	t.Helper()
	var addr string
	waitcond.For(t, "agent "+p.Name+" to serve its metrics", readyTimeout, func() bool {
		if m := metricsAddr.FindStringSubmatch(p.Log()); m != nil {
			addr = m[1]
		}
		return addr != ""
	})
	return "http://" + addr
}

// stop ends a process still running: SIGTERM, then SIGKILL after grace.
func (p *Process) stop(grace time.Duration) {
	if p.Exited() {
		return
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	if !p.Wait(grace) {
		_ = p.Cmd.Process.Kill()
		<-p.done
	}
}

// WaitFor waits until cond holds; it fails the test at the deadline, or as soon as a
// process the test did not signal has exited.
func (ps *Processes) WaitFor(what string, timeout time.Duration, cond func() bool) {
	ps.t.Helper()
	waitcond.For(ps.t, what, timeout, func() bool {
		if p := ps.exitedOnItsOwn(); p != nil {
			st, _ := p.State()
			ps.t.Fatalf("waiting for %s: agent %s exited on its own: %s", what, p.Name, st)
		}
		return cond()
	})
}

func (ps *Processes) exitedOnItsOwn() *Process {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, p := range ps.procs {
		p.mu.Lock()
		signaled := p.signaled
		p.mu.Unlock()
		if !signaled && p.Exited() {
			return p
		}
	}
	return nil
}

func (ps *Processes) printLogsOnFailure() {
	if !ps.t.Failed() {
		return
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, p := range ps.procs {
		st, _ := p.State()
		ps.t.Logf("---- agent %s (%s), log %s ----\n%s", p.Name, st, p.LogPath, tail(p.Log(), 15, 20))
	}
}

// tail is an agent log's last warning and error lines (at most problems) and its last lines.
func tail(log string, lines, problems int) string {
	all := strings.Split(strings.TrimRight(log, "\n"), "\n")
	var bad []string
	for _, l := range all {
		if strings.Contains(l, `"level":"warn"`) || strings.Contains(l, `"level":"error"`) ||
			strings.Contains(l, `"level":"fatal"`) || strings.Contains(l, `"level":"panic"`) || strings.HasPrefix(l, "panic:") {
			bad = append(bad, l)
		}
	}
	bad = bad[max(0, len(bad)-problems):]
	all = all[max(0, len(all)-lines):]
	return fmt.Sprintf("warnings/errors (%d shown):\n%s\nlast %d lines:\n%s", len(bad), strings.Join(bad, "\n"), len(all), strings.Join(all, "\n"))
}

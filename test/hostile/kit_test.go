//go:build linux

package hostile

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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

	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/runmsg"
	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/test/kafkatest"
)

const (
	clientID = "hostile-client"
	secret   = "hostile-client-secret-0123456789abcdef"
	orgID    = "org_hostile"
)

// built is the agent and its shim, built once for the test binary into a directory every
// uid may enter (the agent runs as 65534 when the tests run as root).
var built struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

func agentBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "port-runner-hostile-bin-"); built.err != nil {
			return
		}
		if built.err = os.Chmod(built.dir, 0o755); built.err != nil {
			return
		}
		for _, b := range []struct{ out, pkg string }{{"port-runner-shim", "./cmd/port-runner-shim"}, {"port-runner", "./cmd/port-runner"}} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(built.dir, b.out), b.pkg)
			cmd.Dir = "../.."
			if out, err := cmd.CombinedOutput(); err != nil {
				built.err = fmt.Errorf("go build %s: %w\n%s", b.pkg, err, out)
				return
			}
		}
		built.bin = filepath.Join(built.dir, "port-runner")
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin
}

// env is one test's broker topic and group, Port's emulator, and a directory every uid may
// write (scripts, config, what commands leave for the test).
type env struct {
	cluster      *kafkatest.Cluster
	topic, group string
	emu          *emulator.Emulator
	portURL      string
	dir          string
	agents       int // started so far: each has a log of its own
}

func newEnv(t *testing.T) *env {
	t.Helper()
	cluster := kafkatest.New(t)
	if len(cluster.Opts) > 0 {
		t.Skip("the agent here is configured for a PLAINTEXT broker")
	}
	e := &env{cluster: cluster, topic: cluster.Topic(t, 1), group: cluster.Group(t)}
	e.emu = emulator.New(emulator.Options{ClientID: clientID, ClientSecret: secret, OrgID: orgID, Topic: e.topic})
	ctx, cancel := context.WithCancel(context.Background())
	url, wait, err := e.emu.Start(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = wait() })
	e.portURL = url
	dir, err := os.MkdirTemp("", "port-runner-hostile-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	e.dir = dir
	return e
}

// file writes name in the env's directory (mode 0755: scripts too) and returns its path.
func (e *env) file(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(e.dir, name)
	if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// config writes the agent's config: this env's broker, topic, group and Port, metrics on a
// loopback port of the system's choosing, then extra (sections and actions, YAML).
func (e *env) config(t *testing.T, extra string) string {
	t.Helper()
	return e.file(t, "config.yaml", fmt.Sprintf(`port: {baseURL: %q, clientID: %s, clientSecret: %s, orgID: %s}
kafka: {brokers: [%q], topic: %q, group: %q, startOffset: earliest}
logs: {flushInterval: 100ms}
metrics: {addr: "127.0.0.1:0"}
%s`, e.portURL, clientID, secret, orgID, strings.Join(e.cluster.Brokers, ","), e.topic, e.group, extra))
}

// produceRun registers a run in Port and writes its signed message to the topic.
func (e *env) produceRun(t *testing.T, id, action string) {
	t.Helper()
	e.emu.RegisterRun(id, action)
	msg, err := runmsg.Sign(secret, time.Now().Unix(), fmt.Appendf(nil, `{"action":%q,"context":{"runId":%q},"payload":{"properties":{}}}`, action, id))
	if err != nil {
		t.Fatal(err)
	}
	e.cluster.Produce(t, e.topic, []byte(id), msg)
}

// waitClosed waits for the run to be closed in Port, failing at once if the agent exits.
func (e *env) waitClosed(t *testing.T, a *agentProc, id string, timeout time.Duration) emulator.RunState {
	t.Helper()
	var run emulator.RunState
	waitcond.For(t, "run "+id+" closed in Port", timeout, func() bool {
		if a.exited() {
			t.Fatalf("the agent exited (%v) before run %s closed; its log:\n%s", a.state(), id, a.log(t))
		}
		r, ok := e.emu.Run(id)
		run = r
		return ok && r.Status != "IN_PROGRESS"
	})
	return run
}

// agentProc is the agent running as a process of its own.
type agentProc struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
}

// startAgent runs `port-runner run --config cfg`, as uid 65534 when the test runs as root,
// dying with the test process (Pdeathsig from a thread locked until the agent exits); the
// test's end stops it (SIGTERM, SIGKILL after 30s).
func (e *env) startAgent(t *testing.T, cfg string) *agentProc {
	t.Helper()
	e.agents++
	a := &agentProc{logPath: filepath.Join(e.dir, fmt.Sprintf("agent-%d.log", e.agents)), done: make(chan struct{})}
	logFile, err := os.Create(a.logPath)
	if err != nil {
		t.Fatal(err)
	}
	a.cmd = exec.Command(agentBinary(t), "run", "--config", cfg)
	a.cmd.Dir = e.dir
	a.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + e.dir, "PORT_RUNNER_LOG_LEVEL=info"}
	a.cmd.Stdout, a.cmd.Stderr = logFile, logFile
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if os.Getuid() == 0 {
		a.cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 65534, Gid: 65534}
	}
	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the thread that forked exits: it lives as long as the agent.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		err := a.cmd.Start()
		started <- err
		if err == nil {
			_ = a.cmd.Wait()
		}
		logFile.Close()
		close(a.done)
	}()
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !a.exited() {
			_ = a.cmd.Process.Signal(syscall.SIGTERM)
			if !a.wait(30 * time.Second) {
				_ = a.cmd.Process.Kill()
				<-a.done
			}
		}
		if t.Failed() {
			t.Logf("agent log:\n%s", a.log(t))
		}
	})
	return a
}

func (a *agentProc) pid() int { return a.cmd.Process.Pid }

func (a *agentProc) exited() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

func (a *agentProc) wait(timeout time.Duration) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-a.done:
		return true
	case <-timer.C:
		return false
	}
}

// state is how the agent ended; call it once exited.
func (a *agentProc) state() *os.ProcessState { return a.cmd.ProcessState }

func (a *agentProc) log(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(a.logPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var metricsAddr = regexp.MustCompile(`"serving metrics server".*"addr":"([^"]+)"`)

// metricsURL is where the agent serves /metrics, from its log line saying so.
func (a *agentProc) metricsURL(t *testing.T) string {
	t.Helper()
	var addr string
	waitcond.For(t, "the agent's metrics server", 30*time.Second, func() bool {
		if m := metricsAddr.FindStringSubmatch(a.log(t)); m != nil {
			addr = m[1]
		}
		return addr != ""
	})
	return "http://" + addr
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

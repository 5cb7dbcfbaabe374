package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/runmsg"
	"github.com/port-runner/port-runner/internal/sandbox/sandboxtest"
	"github.com/port-runner/port-runner/internal/shim/shimtest"
	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/test/kafkatest"
)

// The kit of the isolation tests (sandbox_test.go): the built agent, beside the C or the Go
// shim, run as a non-root uid against the emulator and a broker, with hostile commands that
// never run as root and never outside a bound (README "Isolation").

// Uids of these tests: the agent's (nobody) and a range for runAs nothing else uses.
const (
	agentUID            = 65534
	runUIDLo, runUIDHi  = 47330, 47339
	runAsCaps           = "+setuid,+setgid,+chown,+dac_override,+fowner,+kill"
	isolationRunTimeout = 90 * time.Second
)

// binaries are the built agent and shim of one kind, in a directory every uid may read.
type binaries struct{ dir, agent, shim, kind string }

// buildBinaries builds the agent with the C shim ("C") or the Go one ("Go") beside it.
func buildBinaries(t *testing.T, kind string) binaries {
	t.Helper()
	dir := sharedDir(t)
	b := binaries{dir: dir, agent: buildInto(t, dir, "port-runner", "./"), shim: filepath.Join(dir, "port-runner-shim"), kind: kind}
	if kind == "Go" {
		buildInto(t, dir, "port-runner-shim", "../port-runner-shim")
		return b
	}
	path, how, err := shimtest.BuildC(dir)
	if err != nil {
		if shimtest.Required() {
			t.Fatal(err)
		}
		t.Skipf("not checked with the C shim: %v", err)
	}
	if err := os.Rename(path, b.shim); err != nil {
		t.Fatal(err)
	}
	t.Logf("C shim: %s", how)
	return b
}

// eachShimKind runs f with the agent beside each shim.
func eachShimKind(t *testing.T, f func(t *testing.T, b binaries)) {
	for _, kind := range []string{"C", "Go"} {
		t.Run(kind+" shim", func(t *testing.T) { f(t, buildBinaries(t, kind)) })
	}
}

// agentSetup is how a test's agent starts: as agentUID, with runAs's capabilities as
// ambient ones (the way a non-root container keeps them), inside a cgroup of the test's.
type agentSetup struct {
	ambientCaps bool
	cgroup      *sandboxtest.Cgroup
}

// world is one agent under test with its emulator, broker topic and files: its
// credentials in a file only the agent's uid reads, its config likewise, run directories
// under dir/runs.
type world struct {
	t       *testing.T
	dir     string // every uid may enter it
	emu     *emulator.Emulator
	cluster *kafkatest.Cluster
	topic   string
	secret  string
	creds   string // the Port client secret's file
	config  string
	metrics string // the agent's metrics address (/healthz)
	agent   *exec.Cmd
	log     string
	exited  chan struct{}
}

// preWorld readies an agent's world: broker topic, emulator, the credential file; the
// test then writes its scripts into w.dir and calls startWith.
func preWorld(t *testing.T) *world {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("not checked: the test drops the agent to another uid, which needs root")
	}
	cluster := kafkatest.New(t)
	if len(cluster.Opts) > 0 {
		t.Skip("the agent here is configured for a PLAINTEXT broker")
	}
	w := &world{t: t, dir: sharedDir(t), cluster: cluster, secret: "port-secret-" + randomHex(t), exited: make(chan struct{})}
	w.topic = cluster.Topic(t, 1)
	w.emu = emulator.New(emulator.Options{ClientID: "iso-client", ClientSecret: w.secret, OrgID: "org_iso", Topic: w.topic})
	credDir := filepath.Join(w.dir, "credentials")
	w.creds = filepath.Join(credDir, "port-client-secret")
	w.config = filepath.Join(w.dir, "config.yaml")
	mustMkdir(t, credDir, 0o700)
	mustWrite(t, w.creds, w.secret, 0o400)
	runs := filepath.Join(w.dir, "runs") // as a pod's emptyDir: the agent's
	mustMkdir(t, runs, 0o700)
	for _, p := range []string{credDir, w.creds, runs} {
		if err := os.Chown(p, agentUID, agentUID); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// startWith writes the config (actions: YAML lines under actions:; executor: flow mapping
// entries, may be "") and starts the agent of b.
func (w *world) startWith(b binaries, actions, executor string, setup agentSetup) {
	t := w.t
	t.Helper()
	base := serveEmulator(t, w.emu)
	if executor != "" {
		executor = ", " + executor
	}
	yml := fmt.Sprintf(`port: {baseURL: %q, clientID: iso-client, clientSecretFile: %q, orgID: org_iso}
kafka: {brokers: [%q], topic: %q, group: %q, startOffset: earliest}
logs: {flushInterval: 100ms}
metrics: {addr: "127.0.0.1:0"}
executor: {runsDir: %q%s}
actions:
%s`, base, w.creds, strings.Join(w.cluster.Brokers, ","), w.topic, w.cluster.Group(t), filepath.Join(w.dir, "runs"), executor, actions)
	mustWrite(t, w.config, yml, 0o400)
	if err := os.Chown(w.config, agentUID, agentUID); err != nil {
		t.Fatal(err)
	}
	w.start(b, setup)
}

// start runs `port-runner run` as agentUID (through setpriv for ambient capabilities, and a
// shell that moves itself into the test's cgroup first).
func (w *world) start(b binaries, setup agentSetup) {
	t := w.t
	w.log = filepath.Join(w.dir, "agent.log")
	logFile, err := os.Create(w.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	argv := []string{b.agent, "run", "--config", w.config}
	uid := strconv.Itoa(agentUID)
	if setup.ambientCaps {
		if _, err := exec.LookPath("setpriv"); err != nil {
			t.Skip("not checked: setpriv (util-linux) is not installed")
		}
		argv = append([]string{"setpriv", "--reuid=" + uid, "--regid=" + uid, "--clear-groups", "--inh-caps=" + runAsCaps, "--ambient-caps=" + runAsCaps}, argv...)
	}
	if setup.cgroup != nil {
		procs := setup.cgroup.Procs()
		argv = append([]string{"sh", "-c", `echo $$ > "$1" && echo $$ > "$2" && shift 2 && exec "$@"`, "sh", procs[0], procs[1]}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = w.dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + w.dir}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if !setup.ambientCaps {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: agentUID, Gid: agentUID}}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.agent = cmd
	go func() { _ = cmd.Wait(); close(w.exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-w.exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill() // the agent this test started
			<-w.exited
		}
	})
	waitcond.For(t, "the agent to serve its metrics", 60*time.Second, func() bool {
		select {
		case <-w.exited:
			t.Fatalf("the agent exited at start:\n%s", w.logText())
		default:
		}
		for _, line := range strings.Split(w.logText(), "\n") {
			var l struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "serving metrics server" {
				w.metrics = l.Addr
			}
		}
		return w.metrics != "" && w.healthy()
	})
}

// healthy reports whether the agent still runs and answers /healthz.
func (w *world) healthy() bool {
	select {
	case <-w.exited:
		return false
	default:
	}
	resp, err := http.Get("http://" + w.metrics + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// isolation is what the agent's /status says of its isolation.
func (w *world) isolation() (st struct {
	Isolation struct {
		Sandbox     string
		Protections []string
		Shim        string
	}
}) {
	resp, err := http.Get("http://" + w.metrics + "/status")
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		w.t.Fatal(err)
	}
	return st
}

func (w *world) logText() string {
	b, _ := os.ReadFile(w.log)
	return string(b)
}

// produce sends a signed run of action with properties.
func (w *world) produce(id, action, properties string) {
	w.emu.RegisterRun(id, action)
	msg, err := runmsg.Sign(w.secret, time.Now().Unix(), fmt.Appendf(nil, `{"action":%q,"context":{"runId":%q},"payload":{"properties":%s}}`, action, id, properties))
	if err != nil {
		w.t.Fatal(err)
	}
	w.cluster.Produce(w.t, w.topic, []byte(id), msg)
}

// ended waits for run id to end in Port.
func (w *world) ended(id string) emulator.RunState {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), isolationRunTimeout)
	defer cancel()
	run, err := w.emu.WaitRun(ctx, id, func(r emulator.RunState) bool { return r.Status != "IN_PROGRESS" })
	if err != nil {
		w.t.Fatalf("run %s did not end: %v\nagent log:\n%s", id, err, w.logText())
	}
	return run
}

// logLine waits for run id's log in Port to hold a line starting with prefix, and returns
// the rest of it.
func (w *world) logLine(id, prefix string) string {
	w.t.Helper()
	var found string
	ctx, cancel := context.WithTimeout(context.Background(), isolationRunTimeout)
	defer cancel()
	_, err := w.emu.WaitRun(ctx, id, func(r emulator.RunState) bool {
		if v, ok := logValues(r)[strings.TrimSuffix(prefix, ":")]; ok {
			found = v
			return true
		}
		return false
	})
	if err != nil {
		w.t.Fatalf("run %s logged no %q: %v\nagent log:\n%s", id, prefix, err, w.logText())
	}
	return found
}

// logValues reads "name: value" lines of a run's log.
func logValues(r emulator.RunState) map[string]string {
	out := map[string]string{}
	for _, e := range r.Logs {
		sc := bufio.NewScanner(strings.NewReader(e.Message))
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ": "); ok {
				out[k] = v
			}
		}
	}
	return out
}

// script writes an executable script every uid may run.
func (w *world) script(name, body string) string {
	path := filepath.Join(w.dir, name)
	mustWrite(w.t, path, body, 0o755)
	return path
}

func mustWrite(t *testing.T, path, body string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func mustMkdir(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(path, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// processGone reports whether pid no longer runs (a zombie counts as gone).
func processGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && (s[i+2] == 'Z' || s[i+2] == 'X')
}

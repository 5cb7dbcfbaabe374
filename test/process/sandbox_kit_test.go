//go:build linux

package process_test

import (
	"bufio"
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
	"github.com/port-runner/port-runner/internal/sandbox/sandboxtest"
	"github.com/port-runner/port-runner/metrics"
	"github.com/port-runner/port-runner/test/harness"
)

// The kit of the isolation tests (sandbox_test.go): the built agent, beside the C or the Go
// shim, run as a non-root uid against the emulator and a broker (harness), with hostile
// commands that never run as root and never outside a bound (README "Isolation").

// Uids of these tests: the agent's (nobody) and a range for runAs nothing else uses.
const (
	agentUID           = 65534
	runUIDLo, runUIDHi = 47330, 47339
	runAsCaps          = "+setuid,+setgid,+chown,+dac_override,+fowner,+kill"
)

// binaries is the built agent beside one kind of shim ("C" or "Go").
type binaries struct{ agent, kind string }

// eachShimKind runs f with the agent beside each shim.
func eachShimKind(t *testing.T, f func(t *testing.T, b binaries)) {
	for _, kind := range []string{"C", "Go"} {
		t.Run(kind+" shim", func(t *testing.T) {
			bin, shim := harness.BinaryWithShim(t, kind)
			f(t, binaries{agent: bin, kind: shim})
		})
	}
}

// agentSetup is how a test's agent starts: as agentUID, with runAs's capabilities as
// ambient ones (the way a non-root container keeps them), inside a cgroup of the test's.
type agentSetup struct {
	ambientCaps bool
	cgroup      *sandboxtest.Cgroup
}

// world is one agent under test with its harness env and files: its credentials in a file
// only the agent's uid reads, its config likewise, run directories under dir/runs.
type world struct {
	t       *testing.T
	h       *harness.Env
	dir     string // every uid may enter it
	secret  string
	creds   string // the Port client secret's file
	config  string
	procs   *harness.Processes
	agent   *harness.Process
	metrics string // the agent's metrics address (/healthz, /status)
}

// preWorld readies an agent's world: the env (broker topic, emulator), the credential
// file; the test then writes its scripts into w.dir and calls startWith.
func preWorld(t *testing.T) *world {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("not checked: the test drops the agent to another uid, which needs root")
	}
	broker := harness.NewBroker(t)
	if len(broker.Opts) > 0 {
		t.Skip("the agent here is configured for a PLAINTEXT broker")
	}
	w := &world{t: t, dir: sharedDir(t), secret: "port-secret-" + randomHex(t)}
	w.h = harness.New(t, 1, harness.WithBroker(broker), harness.WithPort(func(o *emulator.Options) { o.ClientSecret = w.secret }))
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
// entries, may be "") readable by the agent's uid alone, and starts the agent of b.
func (w *world) startWith(b binaries, actions, executor string, setup agentSetup) {
	t := w.t
	t.Helper()
	if executor != "" {
		executor = ", " + executor
	}
	overlay := fmt.Sprintf("port: {clientSecret: null, clientSecretFile: %q}\nlogs: {flushInterval: 100ms}\nexecutor: {runsDir: %q%s}\n",
		w.creds, filepath.Join(w.dir, "runs"), executor) + harness.Actions(actions)
	mustWrite(t, w.config, w.h.ConfigYAML(t, overlay), 0o400)
	if err := os.Chown(w.config, agentUID, agentUID); err != nil {
		t.Fatal(err)
	}
	o := harness.ProcessOptions{Home: w.dir, AsNobody: !setup.ambientCaps}
	uid := strconv.Itoa(agentUID)
	if setup.ambientCaps {
		if _, err := exec.LookPath("setpriv"); err != nil {
			t.Skip("not checked: setpriv (util-linux) is not installed")
		}
		o.Wrap = []string{"setpriv", "--reuid=" + uid, "--regid=" + uid, "--clear-groups", "--inh-caps=" + runAsCaps, "--ambient-caps=" + runAsCaps}
	}
	if setup.cgroup != nil {
		procs := setup.cgroup.Procs()
		// The cgroup is the agent's uid's to join (sandboxtest.NewCgroup).
		o.Wrap = append([]string{"sh", "-c", `echo $$ > "$1" && echo $$ > "$2" && shift 2 && exec "$@"`, "sh", procs[0], procs[1]}, o.Wrap...)
	}
	w.procs = harness.NewProcesses(t)
	w.agent = w.procs.Agent("agent", b.agent, w.config, o)
	w.metrics = w.procs.MetricsAddr(w.agent, time.Minute)
	if uid := w.agentUID(); uid != agentUID {
		t.Fatalf("the agent runs as uid %d, want %d", uid, agentUID)
	}
}

// agentUID is the real uid the agent process runs as.
func (w *world) agentUID() int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", w.agent.Pid()))
	if err != nil {
		w.t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" {
			uid, _ := strconv.Atoi(f[1])
			return uid
		}
	}
	return -1
}

// healthy reports whether the agent still runs and answers /healthz.
func (w *world) healthy() bool {
	if w.agent.Exited() {
		return false
	}
	resp, err := http.Get("http://" + w.metrics + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// isolation is what the agent's /status says of its isolation.
func (w *world) isolation() metrics.Isolation {
	w.t.Helper()
	iso := harness.Status(w.t, "http://"+w.metrics).Isolation
	if iso == nil {
		w.t.Fatal("/status says nothing of the isolation")
	}
	return *iso
}

// produce sends a signed run of action with properties.
func (w *world) produce(id, action, properties string) {
	w.h.Emu.RegisterRun(id, action)
	body := fmt.Sprintf(`{"action":%q,"context":{"runId":%q},"payload":{"properties":%s}}`, action, id, properties)
	w.h.Produce(w.t, []byte(id), w.h.Sign(w.t, body))
}

// ended waits for run id to end in Port.
func (w *world) ended(id string) emulator.RunState {
	w.t.Helper()
	return w.h.WaitClosed(w.t, id)
}

// logLine waits for run id's log in Port to hold a line "prefix value", and returns value.
func (w *world) logLine(id, prefix string) string {
	w.t.Helper()
	var found string
	w.procs.WaitFor(fmt.Sprintf("run %s to log %q", id, prefix), 90*time.Second, func() bool {
		run, ok := w.h.Emu.Run(id)
		if !ok {
			return false
		}
		v, ok := logValues(run)[strings.TrimSuffix(prefix, ":")]
		found = v
		return ok
	})
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

// killOwn kills pid if it is still a process of this test's run id (its environment says
// so): what a failed test left, and nothing else.
func killOwn(pid int, runID string) {
	env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err == nil && strings.Contains(string(env), "\x00PORT_RUN_ID="+runID+"\x00") {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

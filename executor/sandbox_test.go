package executor

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/sandbox"
)

// probeScript is a hostile command: each line says whether it could do one thing. The
// environment names the targets.
const probeScript = `try() { name=$1; shift; if "$@" >/dev/null 2>&1; then echo "$name: ok"; else echo "$name: denied"; fi; }
try signal-shim kill -0 $PPID
try signal-agent kill -0 $AGENT
try signal-outside kill -0 $OUTSIDE
try signal-other-run kill -0 $OTHER_PID
try environ-outside cat /proc/$OUTSIDE/environ
try environ-agent cat /proc/$AGENT/environ
try environ-other-run cat /proc/$OTHER_PID/environ
try other-run-file cat $OTHER_FILE
try list-other-run ls $OTHER_DIR
try list-runs-root ls $RUNS_ROOT
try credentials cat $CREDS
try write-run-dir sh -c 'echo x > "$(dirname "$PORT_RUN_FILE")/out"'
try read-run-file cat "$PORT_RUN_FILE"
try write-tmpdir sh -c 'echo x > "$TMPDIR/x" && mkdir "$HOME/.cache" && mktemp'
try read-system cat /etc/passwd
try own-child sh -c 'sleep 30 & kill $!'
try dev-null sh -c 'echo x > /dev/null'
`

// TestHelperSandboxAgent is not a real test: TestSandboxBoundaries runs the test binary as a
// fake agent of another uid, which runs probeScript through the shim named by
// EXECUTOR_TEST_SANDBOX in a sandbox, beside another sandboxed run and a process of its own
// uid outside any, and prints what the probe could do.
func TestHelperSandboxAgent(t *testing.T) {
	prefix := os.Getenv("EXECUTOR_TEST_SANDBOX")
	if prefix == "" {
		t.Skip("helper process only")
	}
	base := os.Getenv("EXECUTOR_TEST_BASE")
	creds := filepath.Join(base, "credentials")
	must(os.MkdirAll(creds, 0o700))
	must(os.WriteFile(filepath.Join(creds, "secret"), []byte("port-secret"), 0o440))
	runsRoot := filepath.Join(base, "runs")
	runs, _, err := OpenRunsDir(runsRoot, false)
	must(err)
	defer runs.Close()
	layout, err := sandbox.NewLayout([]string{runsRoot, creds})
	must(err)
	sb, err := sandbox.New(layout)
	must(err)
	iso := Isolation{Sandbox: sb, Runs: runs}
	shimPrefix := strings.Fields(prefix)

	outside := exec.Command("sleep", "60")
	outside.Env = []string{"OUTSIDE_SECRET=s3cr3t"}
	must(outside.Start())
	defer outside.Process.Kill()

	otherDir, err := runs.NewRunDir()
	must(err)
	other := newNotifyWriter()
	otherDone := make(chan Result, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		otherDone <- Run(ctx, Spec{Argv: []string{"sh", "-c", "echo $$; exec sleep 60"}, Env: map[string]string{"OTHER_SECRET": "x"},
			RunFile: []byte("other-run-secret"), RunDir: otherDir, Shim: shimPrefix, Isolation: iso, KillGrace: time.Second}, other)
	}()
	var otherPID string
	select {
	case otherPID = <-other.lines:
	case res := <-otherDone:
		must(fmt.Errorf("the other run ended: %+v %q", res, other.String()))
	case <-time.After(20 * time.Second):
		must(fmt.Errorf("the other run printed nothing: %q", other.String()))
	}
	res := Run(context.Background(), Spec{Argv: []string{"sh", "-c", probeScript}, Shim: shimPrefix, Isolation: iso, Env: map[string]string{
		"AGENT": strconv.Itoa(os.Getpid()), "OUTSIDE": strconv.Itoa(outside.Process.Pid), "OTHER_PID": otherPID,
		"OTHER_FILE": filepath.Join(otherDir, runFileName), "OTHER_DIR": otherDir, "RUNS_ROOT": runsRoot,
		"CREDS": filepath.Join(creds, "secret"), "PATH": os.Getenv("PATH"),
	}}, os.Stdout)
	fmt.Printf("result: %s\n", res.Label)
	cancel()
	<-otherDone
	os.Exit(0)
}

func must(err error) {
	if err != nil {
		fmt.Println("helper error:", err)
		os.Exit(1)
	}
}

// TestSandboxBoundaries: in its sandbox, a command of the agent's uid can neither signal nor
// read the agent, its shim, another run or a process of the same uid outside, nor read
// another run's files or the credentials; its own directory, HOME, TMPDIR, children and
// the system's files stay its. The agent runs as uid 65534 when the test runs as root (as
// root, reading another process's environ is not refused).
func TestSandboxBoundaries(t *testing.T) {
	abi := sandbox.LandlockABI()
	if runtime.GOOS != "linux" || abi < 1 {
		t.Skip("the kernel has no Landlock: nothing to test")
	}
	eachShim(t, func(t *testing.T, prefix []string) {
		got := runAsHelper(t, "TestHelperSandboxAgent", "EXECUTOR_TEST_SANDBOX="+strings.Join(sharedPrefix(t, prefix), " "))
		want := map[string]string{
			"signal-shim": "denied", "signal-agent": "denied", "signal-outside": "denied", "signal-other-run": "denied",
			"environ-outside": "denied", "environ-agent": "denied", "environ-other-run": "denied",
			"other-run-file": "denied", "list-other-run": "denied", "list-runs-root": "denied", "credentials": "denied",
			"write-run-dir": "ok", "read-run-file": "ok", "write-tmpdir": "ok", "read-system": "ok", "own-child": "ok", "dev-null": "ok",
			"result": "exit code 0",
		}
		for check, w := range want {
			if abi < 6 && strings.HasPrefix(check, "signal-") && w == "denied" {
				t.Logf("%s: not checked: signal scoping needs Landlock ABI 6, the kernel has %d", check, abi)
				continue
			}
			if got[check] != w {
				t.Errorf("%s: %q, want %q", check, got[check], w)
			}
		}
	})
}

// runAsHelper runs the test binary's helper test named, with env, as uid 65534 when the test
// runs as root, and returns what it printed as "name: value" lines.
func runAsHelper(t *testing.T, helper string, env ...string) map[string]string {
	t.Helper()
	return runAsHelperWith(t, helper, func(*exec.Cmd) {}, env...)
}

// runAsHelperWith is runAsHelper with configure's changes to the helper's command.
func runAsHelperWith(t *testing.T, helper string, configure func(*exec.Cmd), env ...string) map[string]string {
	t.Helper()
	base := sharedDir(t)
	bin := filepath.Join(base, "executor.test")
	copyFile(t, os.Args[0], bin)
	cmd := exec.Command(bin, "-test.run=^"+helper+"$")
	cmd.Env = append(append(os.Environ(), "EXECUTOR_TEST_BASE="+base), env...)
	if os.Getuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	configure(cmd)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	got := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ": "); ok {
			got[k] = v
		}
	}
	if got["result"] == "" {
		t.Fatalf("helper printed no result:\n%s", out)
	}
	return got
}

// sharedDir is a new directory every uid may enter, removed after the test.
func sharedDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "executor-sandbox-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

// sharedPrefix is prefix with the test binary (the fallback shim) replaced by a copy every
// uid may run.
func sharedPrefix(t *testing.T, prefix []string) []string {
	t.Helper()
	if prefix[0] != os.Args[0] {
		return prefix
	}
	dir := sharedDir(t)
	bin := filepath.Join(dir, "executor-shim.test")
	copyFile(t, os.Args[0], bin)
	return append([]string{bin}, prefix[1:]...)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// realisticScript is what an action's script does: git in a scratch repository and its
// global config in HOME, an API call read with jq, Python, an archive in TMPDIR, kubectl
// and terraform offline, a cache under HOME, openssl. Each tool is run only if installed.
const realisticScript = `set -eu
have() { command -v "$1" >/dev/null 2>&1; }
cd "$TMPDIR"
git config --global user.email ci@example.com && git config --global user.name ci
git init -q repo && cd repo && echo hello > f && git add f && git commit -qm first
echo "git: $(git log --oneline | wc -l)"
have curl && have jq && echo "api: $(curl -fsS "$SERVER/data.json" | jq -r .name)"
have python3 && echo "python: $(python3 -c 'import json, tempfile; tempfile.mkstemp(); print(json.loads("[1]")[0])')"
tar czf "$TMPDIR/a.tgz" f && echo "tar: $(tar tzf "$TMPDIR/a.tgz")"
have kubectl && echo "kubectl: $(kubectl version --client -o json | grep -c gitVersion)"
have terraform && echo "terraform: $(CHECKPOINT_DISABLE=1 terraform -chdir="$TMPDIR" version -json | grep -c terraform_version)"
mkdir -p "$HOME/.cache/tool" && echo ok > "$HOME/.cache/tool/x" && echo "cache: $(cat "$HOME/.cache/tool/x")"
have openssl && echo "openssl: $(openssl rand -hex 4 | wc -c)"
echo "done: yes"
`

// TestRealisticScriptUnderTheSandbox: the default sandbox lets an ordinary script work
// unchanged (README "Isolation").
func TestRealisticScriptUnderTheSandbox(t *testing.T) {
	if runtime.GOOS != "linux" || sandbox.LandlockABI() < 1 {
		t.Skip("not checked: the kernel has no Landlock")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"name":"billing"}`))
	}))
	defer srv.Close()
	private := t.TempDir()
	runs, _, err := OpenRunsDir(filepath.Join(private, "runs"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer runs.Close()
	layout, err := sandbox.NewLayout([]string{filepath.Join(private, "runs"), filepath.Join(private, "credentials")})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := sandbox.New(layout)
	if err != nil {
		t.Fatal(err)
	}
	eachShim(t, func(t *testing.T, prefix []string) {
		res, out := run(t, context.Background(), Spec{Argv: []string{"sh", "-c", realisticScript}, Shim: prefix, Timeout: 2 * time.Minute,
			Env:       map[string]string{"SERVER": srv.URL, "PATH": os.Getenv("PATH")},
			Isolation: Isolation{Sandbox: sb, Runs: runs}})
		if !res.Success || !strings.Contains(out, "done: yes") {
			t.Fatalf("under the sandbox: %+v\n%s", res, out)
		}
		for _, want := range []string{"git: 1", "tar: f", "cache: ok"} {
			if !strings.Contains(out, want+"\n") {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		t.Logf("%s", out)
	})
}

// TestSharedMemoryForTheActionsGivenIt: Python's multiprocessing (Ansible's) needs /dev/shm
// (POSIX semaphores), shared by every process of the machine: a sandboxed command gets it
// only when its action's sandbox.write lists it (the run directories elsewhere), never by
// default (README "Isolation").
func TestSharedMemoryForTheActionsGivenIt(t *testing.T) {
	if runtime.GOOS != "linux" || sandbox.LandlockABI() < 1 {
		t.Skip("not checked: the kernel has no Landlock")
	}
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3 here")
	}
	if fi, err := os.Stat(sandbox.SharedMemoryDir); err != nil || !fi.IsDir() {
		t.Skip("no /dev/shm here")
	}
	private := t.TempDir()
	runs, _, err := OpenRunsDir(filepath.Join(private, "runs"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer runs.Close()
	layout, err := sandbox.NewLayout([]string{filepath.Join(private, "runs")})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := sandbox.New(layout)
	if err != nil {
		t.Fatal(err)
	}
	script := `python3 -c 'import multiprocessing as m; q = m.Queue(); q.put(1); print("queue:", q.get())'`
	eachShim(t, func(t *testing.T, prefix []string) {
		for _, write := range [][]string{nil, {sandbox.SharedMemoryDir}} {
			res, out := run(t, context.Background(), Spec{Argv: []string{"sh", "-c", script}, Shim: prefix, Timeout: time.Minute,
				Env: map[string]string{"PATH": os.Getenv("PATH")}, Isolation: Isolation{Sandbox: sb, Runs: runs, Write: write}})
			if got, want := strings.Contains(out, "queue: 1") && res.Success, write != nil; got != want {
				t.Errorf("sandbox.write %q: multiprocessing worked: %v, want %v: %+v\n%s", write, got, want, res, out)
			}
		}
	})
}

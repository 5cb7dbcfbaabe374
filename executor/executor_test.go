package executor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// notifyWriter collects output and signals when a line has been seen, so
// tests can act on the command's progress instead of sleeping.
type notifyWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines chan string
}

func newNotifyWriter() *notifyWriter { return &notifyWriter{lines: make(chan string, 1024)} }

func (w *notifyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	before := w.buf.Len()
	w.buf.Write(p)
	// Report complete lines only.
	all := w.buf.String()
	start := strings.LastIndex(all[:before], "\n") + 1
	for _, l := range strings.SplitAfter(all[start:], "\n") {
		if strings.HasSuffix(l, "\n") {
			select {
			case w.lines <- strings.TrimSuffix(l, "\n"):
			default:
			}
		}
	}
	return len(p), nil
}

func (w *notifyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func run(t *testing.T, ctx context.Context, spec Spec) (Result, string) {
	t.Helper()
	w := newNotifyWriter()
	res := Run(ctx, spec, w)
	return res, w.String()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// processGone reports whether pid no longer runs. A zombie counts as gone:
// orphans are reparented to pid 1, which in a container may never reap them.
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	// Format: pid (comm) state ...; comm may contain spaces or parens.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && (s[i+2] == 'Z' || s[i+2] == 'X')
}

func firstInt(t *testing.T, out string) int {
	t.Helper()
	line, _, _ := strings.Cut(out, "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("no pid on first line of output %q", out)
	}
	return pid
}

func TestExitCodes(t *testing.T) {
	res, out := run(t, context.Background(), Spec{Argv: []string{"sh", "-c", "echo hello"}})
	if !res.Success || res.ExitCode != 0 || res.Label != "exit code 0" || out != "hello\n" {
		t.Errorf("success: got %+v, out %q", res, out)
	}
	res, _ = run(t, context.Background(), Spec{Argv: []string{"sh", "-c", "exit 3"}})
	if res.Success || res.ExitCode != 3 || res.Label != "exit code 3" {
		t.Errorf("exit 3: got %+v", res)
	}
	if res.Duration <= 0 {
		t.Errorf("duration not set: %+v", res)
	}
}

func TestKilledBySignal(t *testing.T) {
	res, _ := run(t, context.Background(), Spec{Argv: []string{"sh", "-c", "kill -SEGV $$"}})
	if res.Success || res.ExitCode != -1 || res.Label != "killed by signal "+syscall.SIGSEGV.String() {
		t.Errorf("got %+v", res)
	}
}

func TestInterleavedOrder(t *testing.T) {
	script := `i=0; while [ $i -lt 200 ]; do
		if [ $((i % 2)) -eq 0 ]; then echo "line $i"; else echo "line $i" >&2; fi
		i=$((i + 1))
	done`
	res, out := run(t, context.Background(), Spec{Argv: []string{"sh", "-c", script}})
	if !res.Success {
		t.Fatalf("got %+v, out %q", res, out)
	}
	var want strings.Builder
	for i := 0; i < 200; i++ {
		fmt.Fprintf(&want, "line %d\n", i)
	}
	if out != want.String() {
		t.Errorf("output out of order or incomplete:\n%s", out)
	}
}

func TestLargeOutputFullyDelivered(t *testing.T) {
	// More than the pipe buffer and the copy buffer, ending right at exit.
	res, out := run(t, context.Background(), Spec{Argv: []string{"sh", "-c",
		`i=0; while [ $i -lt 20000 ]; do echo "0123456789abcdef $i"; i=$((i + 1)); done`}})
	if !res.Success {
		t.Fatalf("got %+v", res)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 20000 || lines[19999] != "0123456789abcdef 19999" {
		t.Errorf("got %d lines, last %q", len(lines), lines[len(lines)-1])
	}
}

func TestEnvironment(t *testing.T) {
	t.Setenv("PORT_CLIENT_SECRET", "s3cret")
	t.Setenv("HOME", "/home/agent")
	spec := Spec{
		RunID:   "r_123",
		Action:  "deploy",
		RunFile: []byte(`{"payload":{"x":1}}`),
		Env: map[string]string{
			"FOO":           "bar",
			"HOME":          "/custom/home", // may override inherited
			"PORT_RUN_ID":   "forged",       // may not override PORT_*
			"PORT_RUN_FILE": "/etc/passwd",
		},
		Argv: []string{"sh", "-c", `env; echo ---; stat -c %a "$PORT_RUN_FILE"; cat "$PORT_RUN_FILE"`},
	}
	res, out := run(t, context.Background(), spec)
	if !res.Success {
		t.Fatalf("got %+v, out %q", res, out)
	}
	envPart, rest, ok := strings.Cut(out, "---\n")
	if !ok {
		t.Fatalf("bad output %q", out)
	}
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(envPart), "\n") {
		k, v, _ := strings.Cut(l, "=")
		got[k] = v
	}
	want := map[string]string{
		"PATH":        os.Getenv("PATH"),
		"HOME":        "/custom/home",
		"PORT_RUN_ID": "r_123",
		"PORT_ACTION": "deploy",
		"FOO":         "bar",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if _, ok := got["PORT_CLIENT_SECRET"]; ok || strings.Contains(out, "s3cret") {
		t.Errorf("secret leaked into child: %q", out)
	}
	runFile := got["PORT_RUN_FILE"]
	if !strings.Contains(runFile, "port-run-") || !strings.HasSuffix(runFile, ".json") {
		t.Errorf("PORT_RUN_FILE = %q", runFile)
	}
	if rest != "600\n"+`{"payload":{"x":1}}` {
		t.Errorf("run file mode/contents: %q", rest)
	}
	if _, err := os.Stat(runFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("run file %s not removed: %v", runFile, err)
	}
	// The shell adds a few of its own (PWD, SHLVL...); anything else came from us.
	for k := range got {
		switch k {
		case "PATH", "HOME", "LANG", "TZ", "PORT_RUN_ID", "PORT_ACTION", "PORT_RUN_FILE", "FOO", "PWD", "SHLVL", "_", "OLDPWD":
		default:
			t.Errorf("unexpected variable %s in child", k)
		}
	}
}

func TestEnviron(t *testing.T) {
	t.Setenv("PATH", "/bin")
	t.Setenv("HOME", "/h")
	t.Setenv("LANG", "C.UTF-8")
	t.Setenv("TZ", "") // registers restoration at cleanup
	os.Unsetenv("TZ")  // unset, not empty: must be absent from the child
	t.Setenv("AWS_SECRET_ACCESS_KEY", "nope")
	got := Environ(Spec{RunID: "r", Action: "a", Env: map[string]string{
		"B": "2", "A": "1", "LANG": "fr", "PORT_ACTION": "x", "BAD=KEY": "v", "": "v",
	}}, "/tmp/f")
	want := []string{"PATH=/bin", "HOME=/h", "LANG=fr", "PORT_RUN_ID=r", "PORT_ACTION=a", "PORT_RUN_FILE=/tmp/f", "A=1", "B=2"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Environ = %q, want %q", got, want)
	}
}

func TestLookupUsesChildPath(t *testing.T) {
	res, _ := run(t, context.Background(), Spec{Argv: []string{"sh", "-c", "true"}, Env: map[string]string{"PATH": "/nonexistent"}})
	if res.Success || !strings.HasPrefix(res.Label, "could not start: ") || res.ExitCode != -1 {
		t.Errorf("got %+v", res)
	}
}

func TestStartFailures(t *testing.T) {
	notExec := t.TempDir() + "/script"
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		spec Spec
		want string
	}{
		{"not found", Spec{Argv: []string{"nope-not-a-command"}}, `could not start: exec: "nope-not-a-command": executable file not found in $PATH`},
		{"not executable", Spec{Argv: []string{notExec}}, "could not start: exec: \"" + notExec + "\": permission denied"},
		{"bad dir", Spec{Argv: []string{"true"}, Dir: "/does/not/exist"}, "could not start: dir: stat /does/not/exist: no such file or directory"},
		{"empty", Spec{}, "could not start: empty command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, _ := run(t, context.Background(), tc.spec)
			if res.Success || res.ExitCode != -1 || res.Label != tc.want {
				t.Errorf("got %+v, want label %q", res, tc.want)
			}
		})
	}
}

func TestDir(t *testing.T) {
	dir := t.TempDir()
	res, out := run(t, context.Background(), Spec{Argv: []string{"pwd"}, Dir: dir})
	if !res.Success || strings.TrimSpace(out) != dir {
		t.Errorf("got %+v, out %q, want %q", res, out, dir)
	}
}

func TestTimeoutEscalatesToSIGKILL(t *testing.T) {
	start := time.Now()
	res, _ := run(t, context.Background(), Spec{
		Argv:      []string{"sh", "-c", `trap "" TERM; sleep 30`},
		Timeout:   200 * time.Millisecond,
		KillGrace: 100 * time.Millisecond,
	})
	if res.Success || res.ExitCode != -1 || res.Label != "timed out after 200ms" {
		t.Errorf("got %+v", res)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("took %v", el)
	}
}

func TestTimeoutSIGTERMFirst(t *testing.T) {
	// A command that honours SIGTERM ends long before the (huge) grace.
	start := time.Now()
	res, _ := run(t, context.Background(), Spec{
		Argv:      []string{"sleep", "30"},
		Timeout:   200 * time.Millisecond,
		KillGrace: time.Hour,
	})
	if res.Success || res.Label != "timed out after 200ms" {
		t.Errorf("got %+v", res)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("took %v: SIGTERM not delivered?", el)
	}
}

func TestTimeoutKillsGrandchild(t *testing.T) {
	res, out := run(t, context.Background(), Spec{
		Argv:      []string{"sh", "-c", `sleep 30 & echo $!; wait`},
		Timeout:   300 * time.Millisecond,
		KillGrace: 100 * time.Millisecond,
	})
	if res.Label != "timed out after 300ms" {
		t.Errorf("got %+v", res)
	}
	pid := firstInt(t, out)
	waitFor(t, 5*time.Second, "grandchild to die", func() bool { return processGone(pid) })
}

func TestCancelWithCause(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	w := newNotifyWriter()
	done := make(chan Result, 1)
	go func() {
		done <- Run(ctx, Spec{Argv: []string{"sh", "-c", `sleep 30 & echo $!; wait`}, KillGrace: time.Second}, w)
	}()
	var pid int
	select {
	case l := <-w.lines:
		pid, _ = strconv.Atoi(l)
	case <-time.After(10 * time.Second):
		t.Fatal("no output from command")
	}
	cancel(errors.New("x"))
	var res Result
	select {
	case res = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if res.Success || res.Label != "cancelled: x" {
		t.Errorf("got %+v", res)
	}
	if pid <= 0 {
		t.Fatalf("bad pid in %q", w.String())
	}
	waitFor(t, 5*time.Second, "grandchild to die", func() bool { return processGone(pid) })
}

func TestPlainCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	w := newNotifyWriter()
	done := make(chan Result, 1)
	go func() { done <- Run(ctx, Spec{Argv: []string{"sh", "-c", "echo up; exec sleep 30"}}, w) }()
	select {
	case <-w.lines:
	case <-time.After(10 * time.Second):
		t.Fatal("no output from command")
	}
	cancel()
	select {
	case res := <-done:
		if res.Success || res.Label != "cancelled: agent shutting down" {
			t.Errorf("got %+v", res)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestCancelledBeforeStart(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("run withdrawn"))
	res, out := run(t, ctx, Spec{Argv: []string{"sh", "-c", "echo should-not-run"}})
	if res.Success || res.Label != "cancelled: run withdrawn" || out != "" {
		t.Errorf("got %+v, out %q", res, out)
	}
}

func TestGrandchildHoldingPipe(t *testing.T) {
	start := time.Now()
	res, out := run(t, context.Background(), Spec{Argv: []string{"sh", "-c", "sleep 30 & echo done"}})
	if !res.Success || !strings.Contains(out, "done") {
		t.Errorf("got %+v, out %q", res, out)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Run took %v", el)
	}
}

func TestEscapedGrandchildHoldingPipe(t *testing.T) {
	// setsid leaves the process group, so only the drain timeout ends the run.
	start := time.Now()
	res, out := run(t, context.Background(), Spec{Argv: []string{"sh", "-c", "setsid sleep 30 & echo $!"}})
	if pid, err := strconv.Atoi(strings.TrimSpace(out)); err == nil {
		defer syscall.Kill(pid, syscall.SIGKILL)
	}
	if !res.Success {
		t.Errorf("got %+v, out %q", res, out)
	}
	if el := time.Since(start); el > drainTimeout+3*time.Second {
		t.Errorf("Run took %v", el)
	}
}

type panicWriter struct{}

func (panicWriter) Write([]byte) (int, error) { panic("boom") }

func TestBrokenWriterDoesNotBlockCommand(t *testing.T) {
	res := Run(context.Background(), Spec{Argv: []string{"sh", "-c", "head -c 1000000 /dev/zero; echo"}}, panicWriter{})
	if !res.Success {
		t.Errorf("got %+v", res)
	}
	res = Run(context.Background(), Spec{Argv: []string{"sh", "-c", "head -c 1000000 /dev/zero"}}, errWriter{})
	if !res.Success {
		t.Errorf("got %+v", res)
	}
	res = Run(context.Background(), Spec{Argv: []string{"true"}}, nil)
	if !res.Success {
		t.Errorf("nil writer: got %+v", res)
	}
}

type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		10 * time.Minute:             "10m",
		90 * time.Second:             "1m30s",
		500 * time.Millisecond:       "500ms",
		time.Hour:                    "1h",
		time.Hour + time.Second:      "1h0m1s",
		10 * time.Second:             "10s",
		2*time.Hour + 30*time.Minute: "2h30m",
		1500 * time.Millisecond:      "1.5s",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestThreadChurnDoesNotKillChild checks the Pdeathsig/thread interaction:
// goroutines that exit while locked to their OS thread make the runtime end
// that thread; if it were the thread that forked the child, the kernel would
// SIGKILL the child (PR_SET_PDEATHSIG is per thread).
func TestThreadChurnDoesNotKillChild(t *testing.T) {
	done := make(chan Result, 1)
	w := newNotifyWriter()
	go func() { done <- Run(context.Background(), Spec{Argv: []string{"sh", "-c", "echo up; sleep 1"}}, w) }()
	select {
	case <-w.lines:
	case <-time.After(10 * time.Second):
		t.Fatal("no output from command")
	}
	for {
		var wg sync.WaitGroup
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
			}()
		}
		wg.Wait()
		select {
		case res := <-done:
			if !res.Success {
				t.Fatalf("child did not survive thread churn: %+v", res)
			}
			return
		default:
		}
	}
}

// TestHelperProcess is not a real test: TestPdeathsig runs the test binary
// as a fake agent that starts a long child and prints the child's pid.
func TestHelperProcess(t *testing.T) {
	if os.Getenv("EXECUTOR_TEST_HELPER") != "1" {
		t.Skip("helper process only")
	}
	Run(context.Background(), Spec{Argv: []string{"sh", "-c", "echo $$; exec sleep 30"}}, os.Stdout)
	os.Exit(0)
}

func TestPdeathsig(t *testing.T) {
	agent, line := startFakeAgent(t, "TestHelperProcess", "EXECUTOR_TEST_HELPER")
	pid, err := strconv.Atoi(line)
	if err != nil || pid <= 0 {
		t.Fatalf("fake agent printed %q, want a pid", line)
	}
	if processGone(pid) {
		t.Fatalf("child %d not running before the agent dies", pid)
	}
	if err := agent.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	agent.Wait()
	waitFor(t, 5*time.Second, "child of the killed agent to die", func() bool { return processGone(pid) })
}

// startFakeAgent re-runs the test binary as a fake agent (the helper test named, enabled by
// envFlag=1) and returns it with the first line it prints.
func startFakeAgent(t *testing.T, helperTest, envFlag string) (*exec.Cmd, string) {
	t.Helper()
	agent := exec.Command(os.Args[0], "-test.run=^"+helperTest+"$")
	agent.Env = append(os.Environ(), envFlag+"=1")
	stdout, err := agent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = agent.Process.Kill(); _ = agent.Wait() })
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	select {
	case line := <-lines:
		return agent, line
	case <-time.After(20 * time.Second):
		t.Fatal("fake agent printed nothing")
		return nil, ""
	}
}

// OnStart gets the pid of the process Run started, once, before the command's output ends.
func TestOnStartGetsThePid(t *testing.T) {
	var pids []int
	res, out := run(t, context.Background(), Spec{
		Argv:    []string{"/bin/sh", "-c", "echo $$"},
		OnStart: func(pid int) { pids = append(pids, pid) },
	})
	if !res.Success {
		t.Fatalf("result %+v", res)
	}
	if len(pids) != 1 || strconv.Itoa(pids[0]) != strings.TrimSpace(out) {
		t.Fatalf("OnStart got %v, the command says its pid is %q", pids, out)
	}
}

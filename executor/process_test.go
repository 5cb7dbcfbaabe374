package executor

import (
	"bufio"
	"context"
	"errors"
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
	if pid <= 0 {
		t.Fatalf("bad pid in %q", w.String())
	}
	grandchild := watchProcess(t, pid)
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
	waitFor(t, 5*time.Second, "grandchild to die", grandchild.gone)
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
	agent, line := startFakeAgent(t, "TestHelperProcess", "EXECUTOR_TEST_HELPER=1")
	pid, err := strconv.Atoi(line)
	if err != nil || pid <= 0 {
		t.Fatalf("fake agent printed %q, want a pid", line)
	}
	child := watchProcess(t, pid)
	if child.gone() {
		t.Fatalf("child %d not running before the agent dies", pid)
	}
	if err := agent.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	agent.Wait()
	waitFor(t, 5*time.Second, "child of the killed agent to die", child.gone)
}

// startFakeAgent re-runs the test binary as a fake agent (the helper test named, enabled by
// the variable assignment env) and returns it with the first line it prints.
func startFakeAgent(t *testing.T, helperTest, env string) (*exec.Cmd, string) {
	t.Helper()
	agent := exec.Command(os.Args[0], "-test.run=^"+helperTest+"$")
	// Its runs' directories go where the test removes them: killed, it leaves them, and
	// without a RunsDir no later agent sweeps them (they piled up in /dev/shm). Not
	// t.TempDir: the killed agent's last processes may still be going when it is removed.
	runs, err := os.MkdirTemp("", "executor-fake-agent-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(runs) })
	agent.Env = append(os.Environ(), env, "TMPDIR="+runs, "RUNTIME_DIRECTORY=")
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

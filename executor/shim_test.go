package executor

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary serve as the shim, as the agent's binary does in production.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == ShimCommand {
		os.Exit(RunShim(os.Args[2:]))
	}
	os.Exit(m.Run())
}

func shim() []string { return []string{os.Args[0], ShimCommand} }

func TestShimPassesTheEndOn(t *testing.T) {
	for _, tc := range []struct {
		script, label string
		ok            bool
	}{
		{"echo hello", "exit code 0", true},
		{"exit 3", "exit code 3", false},
		{"kill -SEGV $$", "killed by signal segmentation fault", false},
	} {
		res, out := run(t, context.Background(), Spec{Argv: []string{"sh", "-c", tc.script}, Shim: shim()})
		if res.Success != tc.ok || res.Label != tc.label {
			t.Errorf("%q through the shim: %+v (output %q), want %q", tc.script, res, out, tc.label)
		}
	}
	res, out := run(t, context.Background(), Spec{Argv: []string{"sh", "-c", "echo out; echo err >&2; echo $0 $1", "zero", "one"}, Shim: shim()})
	if !res.Success || out != "out\nerr\nzero one\n" {
		t.Errorf("output through the shim: %q (%+v)", out, res)
	}
}

func TestShimTimeoutReachesTheCommand(t *testing.T) {
	res, out := run(t, context.Background(), Spec{
		Argv: []string{"sh", "-c", "trap 'echo got TERM; exit 0' TERM; echo $$; sleep 30 & wait"}, Shim: shim(),
		Timeout: 300 * time.Millisecond, KillGrace: 5 * time.Second,
	})
	if res.Success || res.Label != "timed out after 300ms" || !strings.Contains(out, "got TERM") {
		t.Fatalf("timeout through the shim: %+v, output %q", res, out)
	}
	if pid := firstInt(t, out); !processGone(pid) {
		t.Errorf("command %d still running after the timeout", pid)
	}
}

// TestHelperAgentWithShim is not a real test: a fake agent that runs a command through the
// shim; the command starts a grandchild and prints both pids.
func TestHelperAgentWithShim(t *testing.T) {
	if os.Getenv("EXECUTOR_TEST_SHIM_AGENT") != "1" {
		t.Skip("helper process only")
	}
	Run(context.Background(), Spec{Argv: []string{"sh", "-c", "sleep 60 & echo $! $$; wait"}, Shim: shim()}, os.Stdout)
	os.Exit(0)
}

// TestShimTakesTheGroupDownWhenTheAgentDies: Pdeathsig alone would kill only the direct
// child; the grandchild must die too.
func TestShimTakesTheGroupDownWhenTheAgentDies(t *testing.T) {
	agent, line := startFakeAgent(t, "TestHelperAgentWithShim", "EXECUTOR_TEST_SHIM_AGENT")
	var pids []int
	for _, f := range strings.Fields(line) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	if len(pids) != 2 {
		t.Fatalf("want grandchild and command pids, got %q", line)
	}
	for _, pid := range pids {
		if processGone(pid) {
			t.Fatalf("process %d not running before the agent dies", pid)
		}
	}
	if err := agent.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = agent.Wait()
	for _, pid := range pids {
		waitFor(t, 10*time.Second, "the killed agent's command and grandchild to die", func() bool { return processGone(pid) })
	}
}

// TestShimCleansUpWhenTheCommandExits: the command's group is the shim's to end. A
// grandchild left behind is killed by the shim itself as the command exits, so it does not
// depend on the agent surviving that moment.
func TestShimCleansUpWhenTheCommandExits(t *testing.T) {
	res, out := run(t, context.Background(), Spec{Argv: []string{"sh", "-c", "sleep 60 & echo $!"}, Shim: shim()})
	if !res.Success {
		t.Fatalf("%+v %q", res, out)
	}
	pid := firstInt(t, out)
	waitFor(t, 5*time.Second, "the grandchild to be killed with its run", func() bool { return processGone(pid) })
}

// TestShimStartFailureIsCouldNotStart: a script without a shebang cannot be exec'd; through
// the shim, Port must still see why, not an exit code the shim made up.
func TestShimStartFailureIsCouldNotStart(t *testing.T) {
	script := t.TempDir() + "/no-shebang"
	if err := os.WriteFile(script, []byte("echo hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	res, out := run(t, context.Background(), Spec{Argv: []string{script}, Shim: shim()})
	if res.Success || !strings.HasPrefix(res.Label, "could not start: ") || !strings.Contains(res.Label, "exec format error") {
		t.Fatalf("start failure through the shim: %+v (output %q), want could not start: ... exec format error", res, out)
	}
}

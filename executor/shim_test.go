package executor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/shim"
	"github.com/port-runner/port-runner/internal/shim/shimtest"
)

// tinyShim is the Go port-runner-shim TestMain builds, cShim the C one; empty outside Linux
// (cShim also without a C compiler, outside CI).
var tinyShim, cShim string

// TestMain builds both shims, and lets the test binary serve as the fallback shim, as the
// agent's binary does when neither is beside it.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == shim.Command {
		os.Exit(shim.Main(os.Args[2:]))
	}
	if os.Getenv("EXECUTOR_TEST_BASE") != "" { // a helper of runAsHelper: its shims are named
		os.Exit(m.Run())
	}
	os.Exit(buildShimAndRun(m))
}

func buildShimAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "executor-test-shim-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// Every uid may run them: some tests run the agent's part as another uid.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if tinyShim, err = shimtest.BuildGo(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if cShim, _, err = shimtest.BuildC(dir); err != nil {
		if shimtest.Required() {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "executor tests: the C shim's cases are skipped: %v\n", err)
	}
	return m.Run()
}

// shims are the ways a command runs under the shim: the C binary the image ships, the Go
// one, and the agent's own binary (here the test binary) as the fallback.
func shims() map[string][]string {
	s := map[string][]string{
		"tiny":     {tinyShim},
		"fallback": {os.Args[0], shim.Command},
	}
	if cShim != "" {
		s["c"] = []string{cShim}
	}
	return s
}

func eachShim(t *testing.T, f func(t *testing.T, prefix []string)) {
	for name, prefix := range shims() {
		t.Run(name, func(t *testing.T) { f(t, prefix) })
	}
}

func TestShimFor(t *testing.T) {
	got, kind, err := ShimFor(filepath.Join(filepath.Dir(tinyShim), "port-runner"))
	if err != nil || len(got) != 1 || got[0] != tinyShim || (kind != ShimC && kind != ShimGo) {
		t.Errorf("with the tiny shim beside the agent: %q (%s), %v", got, kind, err)
	}
	exe := filepath.Join(t.TempDir(), "port-runner")
	got, kind, err = ShimFor(exe)
	if err == nil || strings.Join(got, " ") != exe+" "+shim.Command || kind != ShimAgentBinary {
		t.Errorf("without it: %q (%s), %v; want the agent's binary as the shim and an error", got, kind, err)
	}
	// A shim of an earlier release, left beside a new agent, would refuse its options.
	stale := filepath.Join(filepath.Dir(exe), shim.Binary)
	if err := os.WriteFile(stale, []byte("#!/bin/sh\necho 'port-runner-shim (C)'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, _, err = ShimFor(exe)
	if err == nil || !strings.Contains(err.Error(), "another release") || strings.Join(got, " ") != exe+" "+shim.Command {
		t.Errorf("beside a shim of another protocol: %q, %v; want the agent's binary as the shim and an error", got, err)
	}
	for name, prefix := range shims() {
		if out, err := exec.Command(prefix[0], append(prefix[1:], "--version")...).Output(); err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), shim.Protocol) {
			t.Errorf("the %s shim's --version: %q, %v; want it to end with %q", name, out, err, shim.Protocol)
		}
	}
}

func TestShimPassesTheEndOn(t *testing.T) {
	eachShim(t, func(t *testing.T, prefix []string) {
		for _, tc := range []struct {
			script, label string
			ok            bool
		}{
			{"echo hello", "exit code 0", true},
			{"exit 3", "exit code 3", false},
			{"kill -SEGV $$", "killed by signal segmentation fault", false},
		} {
			res, out := run(t, context.Background(), Spec{Argv: []string{"sh", "-c", tc.script}, Shim: prefix})
			if res.Success != tc.ok || res.Label != tc.label {
				t.Errorf("%q through the shim: %+v (output %q), want %q", tc.script, res, out, tc.label)
			}
		}
		res, out := run(t, context.Background(), Spec{Argv: []string{"sh", "-c", "echo out; echo err >&2; echo $0 $1", "zero", "one"}, Shim: prefix})
		if !res.Success || out != "out\nerr\nzero one\n" {
			t.Errorf("output through the shim: %q (%+v)", out, res)
		}
	})
}

func TestShimTimeoutReachesTheCommand(t *testing.T) {
	eachShim(t, func(t *testing.T, prefix []string) {
		res, out := run(t, context.Background(), Spec{
			Argv: []string{"sh", "-c", "trap 'echo got TERM; exit 0' TERM; echo $$; sleep 30 & wait"}, Shim: prefix,
			Timeout: 300 * time.Millisecond, KillGrace: 5 * time.Second,
		})
		if res.Success || res.Label != "timed out after 300ms" || !strings.Contains(out, "got TERM") {
			t.Fatalf("timeout through the shim: %+v, output %q", res, out)
		}
		if pid := firstInt(t, out); !processGone(pid) {
			t.Errorf("command %d still running after the timeout", pid)
		}
	})
}

// escapees starts two processes that leave the command's process group: one setsid'd, one
// setsid'd and double-forked (its parent exits at once, so it is orphaned), and prints their
// pids, then the command's, on its first line.
const escapees = `setsid sleep 60 & a=$!
b=$(sh -c 'setsid sleep 60 >/dev/null 2>&1 & echo $!')
echo $a $b $$`

// pids watches the processes whose pids line lists.
func pids(t *testing.T, line string) []watchedProcess {
	t.Helper()
	var ps []watchedProcess
	for _, f := range strings.Fields(line) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("want pids, got %q", line)
		}
		ps = append(ps, watchProcess(t, pid))
	}
	return ps
}

func waitAllGone(t *testing.T, what string, ps []watchedProcess) {
	t.Helper()
	for _, p := range ps {
		waitFor(t, 10*time.Second, fmt.Sprintf("%s: process %d to die", what, p.pid), p.gone)
	}
}

// TestShimKillsEscapeesWhenTheCommandExits: what the command leaves behind, in its group or
// not, is killed by the shim itself as the command exits. Without the shim, the same
// command's escapees survive (see the no-shim case) unless killed by hand.
func TestShimKillsEscapeesWhenTheCommandExits(t *testing.T) {
	eachShim(t, func(t *testing.T, prefix []string) {
		res, out := run(t, context.Background(), Spec{Argv: []string{"sh", "-c", escapees + "; sleep 60 & echo $!"}, Shim: prefix})
		if !res.Success {
			t.Fatalf("%+v %q", res, out)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		ps := append(pids(t, lines[0]), pids(t, lines[len(lines)-1])...)
		if len(ps) != 4 {
			t.Fatalf("want 4 pids, got %q", out)
		}
		waitAllGone(t, "after the command exited", ps)
	})
}

func TestShimKillsEscapeesOnTimeout(t *testing.T) {
	eachShim(t, func(t *testing.T, prefix []string) {
		res, out := run(t, context.Background(), Spec{
			Argv: []string{"sh", "-c", escapees + "; sleep 60"}, Shim: prefix,
			Timeout: 500 * time.Millisecond, KillGrace: 5 * time.Second,
		})
		if res.Label != "timed out after 500ms" {
			t.Fatalf("%+v %q", res, out)
		}
		waitAllGone(t, "after the timeout", pids(t, strings.TrimSpace(out)))
	})
}

// TestHelperAgentWithShim is not a real test: a fake agent that runs a command through the
// shim named by EXECUTOR_TEST_SHIM; the command leaves escapees and a plain grandchild and
// prints their pids and its own.
func TestHelperAgentWithShim(t *testing.T) {
	prefix := os.Getenv("EXECUTOR_TEST_SHIM")
	if prefix == "" {
		t.Skip("helper process only")
	}
	Run(context.Background(), Spec{Argv: []string{"sh", "-c", "sleep 60 & c=$!; " + escapees + " $c; wait"}, Shim: strings.Fields(prefix)}, os.Stdout)
	os.Exit(0)
}

// TestShimTakesEverythingDownWhenTheAgentDies: Pdeathsig alone would kill only the direct
// child, a process group only its members; the grandchild and both escapees must die too.
func TestShimTakesEverythingDownWhenTheAgentDies(t *testing.T) {
	eachShim(t, func(t *testing.T, prefix []string) {
		agent, line := startFakeAgent(t, "TestHelperAgentWithShim", "EXECUTOR_TEST_SHIM="+strings.Join(prefix, " "))
		ps := pids(t, line)
		if len(ps) != 4 {
			t.Fatalf("want 4 pids, got %q", line)
		}
		for _, p := range ps {
			if p.gone() {
				t.Fatalf("process %d not running before the agent dies", p.pid)
			}
		}
		if err := agent.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = agent.Wait()
		waitAllGone(t, "after the agent was SIGKILLed", ps)
	})
}

// TestShimStartFailureIsCouldNotStart: a script without a shebang cannot be exec'd; through
// the shim, Port must still see why, not an exit code the shim made up.
func TestShimStartFailureIsCouldNotStart(t *testing.T) {
	eachShim(t, func(t *testing.T, prefix []string) {
		script := t.TempDir() + "/no-shebang"
		if err := os.WriteFile(script, []byte("echo hi\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		res, out := run(t, context.Background(), Spec{Argv: []string{script}, Shim: prefix})
		if res.Success || !strings.HasPrefix(res.Label, "could not start: ") || !strings.Contains(res.Label, "exec format error") {
			t.Fatalf("start failure through the shim: %+v (output %q), want could not start: ... exec format error", res, out)
		}
	})
}

// TestShimOnStart: OnStart gets the shim's pid, the command's parent. (That the shim is not
// dumpable needs an unprivileged reader: cmd/port-runner's TestCommandFindsNoCredential.)
func TestShimOnStart(t *testing.T) {
	eachShim(t, func(t *testing.T, prefix []string) {
		var started int
		res, out := run(t, context.Background(), Spec{
			Argv: []string{"sh", "-c", "echo $PPID"}, Shim: prefix,
			OnStart: func(pid int) {
				started = pid
				b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
				if err != nil || !strings.Contains(string(b), "\nPPid:\t"+strconv.Itoa(os.Getpid())+"\n") {
					t.Errorf("OnStart pid %d is not the agent's child: %v", pid, err)
				}
			},
		})
		if !res.Success || firstInt(t, out) != started {
			t.Errorf("the command's parent is %q, OnStart said %d (%+v)", out, started, res)
		}
	})
}

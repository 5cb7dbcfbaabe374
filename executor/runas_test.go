package executor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/port-runner/port-runner/internal/sandbox"
)

// The uids these tests give runs: a range nothing else on a machine uses, never root nor
// the test's own (the shims refuse those too).
const (
	testRunUIDLo = 47320
	testRunUIDHi = 47323
	// testAgentUID is the non-root agent's uid; a test running as root drops to it.
	testAgentUID = 65534
)

// runAsScript reports the command's ids and capabilities, tries to reach the agent and to
// take back the agent's uid, writes its HOME, and leaves a setsid'd process behind.
const runAsScript = `id -u; id -g
grep -E '^Cap(Prm|Eff|Amb):' /proc/self/status
kill -0 $AGENT 2>/dev/null && echo "signal-agent: ok" || echo "signal-agent: denied"
cat /proc/$AGENT/environ >/dev/null 2>&1 && echo "environ-agent: ok" || echo "environ-agent: denied"
setpriv --reuid=$AGENT_UID true 2>/dev/null && echo "setuid-back: ok" || echo "setuid-back: denied"
echo x > "$HOME/f" && echo "home: ok"
setsid sleep 60 >/dev/null 2>&1 &
echo "leftover: $!"
`

// TestHelperRunAsAgent is not a real test: TestRunAsDropsEverything runs the test binary as
// a non-root agent holding its capabilities as ambient ones, the only way a non-root
// container keeps them; it runs runAsScript under runAs through EXECUTOR_TEST_RUNAS's shim.
func TestHelperRunAsAgent(t *testing.T) {
	prefix := os.Getenv("EXECUTOR_TEST_RUNAS")
	if prefix == "" {
		t.Skip("helper process only")
	}
	out := runAsRun(t, strings.Fields(prefix), os.Getenv("EXECUTOR_TEST_BASE"), nil)
	fmt.Print(out)
	os.Exit(0)
}

// runAsRun runs runAsScript with a uid of its own (testRunUIDLo-testRunUIDHi) and returns its output plus
// a "result:" line.
func runAsRun(t *testing.T, prefix []string, base string, sb *sandbox.Sandbox) string {
	uids, err := sandbox.NewUIDs(testRunUIDLo, testRunUIDHi)
	must(err)
	runs, _, err := OpenRunsDir(filepath.Join(base, "runs"), true)
	must(err)
	defer runs.Close()
	w := newNotifyWriter()
	res := Run(context.Background(), Spec{Argv: []string{"sh", "-c", runAsScript}, Shim: prefix,
		Env:       map[string]string{"AGENT": strconv.Itoa(os.Getpid()), "AGENT_UID": strconv.Itoa(os.Getuid()), "PATH": os.Getenv("PATH")},
		Isolation: Isolation{UIDs: uids, Runs: runs, Sandbox: sb}}, w)
	return w.String() + "result: " + res.Label + "\n"
}

// TestRunAsDropsEverything: under runAs the command runs as its own uid with no capability
// left (a non-root agent's ambient ones included), cannot reach the agent nor take back its
// uid, has a HOME of its own, and none of its processes outlives the run.
func TestRunAsDropsEverything(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("not checked: runAs needs CAP_SETUID and CAP_SETGID, which this test run lacks")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("not checked: setpriv (util-linux) is not installed")
	}
	var sb *sandbox.Sandbox
	if layout, err := sandbox.NewLayout([]string{t.TempDir()}); err == nil {
		sb, _ = sandbox.New(layout)
	}
	eachShim(t, func(t *testing.T, prefix []string) {
		for _, agent := range []string{"root agent", "root agent, sandboxed run", "non-root agent with ambient capabilities"} {
			var out string
			switch {
			case strings.HasPrefix(agent, "non-root"):
				out = runAmbient(t, sharedPrefix(t, prefix))
			case strings.Contains(agent, "sandboxed"):
				if sb == nil {
					t.Logf("%s: not checked: no Landlock", agent)
					continue
				}
				out = runAsRun(t, prefix, sharedDir(t), sb)
			default:
				out = runAsRun(t, prefix, sharedDir(t), nil)
			}
			checkRunAs(t, agent, out)
		}
	})
}

// runAmbient runs TestHelperRunAsAgent as testAgentUID with the capabilities runAs needs as
// ambient ones (setpriv). It never runs a hostile command: the run's script only probes
// (kill -0), and the shim checks that its command holds no capability.
func runAmbient(t *testing.T, prefix []string) string {
	t.Helper()
	base := sharedDir(t)
	bin := filepath.Join(base, "executor.test")
	copyFile(t, os.Args[0], bin)
	caps := "+setuid,+setgid,+chown,+dac_override,+fowner,+kill"
	id := strconv.Itoa(testAgentUID)
	cmd := exec.Command("setpriv", "--reuid="+id, "--regid="+id, "--clear-groups", "--inh-caps="+caps, "--ambient-caps="+caps,
		bin, "-test.run=^TestHelperRunAsAgent$")
	cmd.Env = append(os.Environ(), "EXECUTOR_TEST_BASE="+base, "EXECUTOR_TEST_RUNAS="+strings.Join(prefix, " "))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	return string(out)
}

func checkRunAs(t *testing.T, agent, out string) {
	t.Helper()
	lines := strings.Split(out, "\n")
	if len(lines) < 2 || lines[0] != lines[1] {
		t.Fatalf("%s: uid and gid: %q", agent, out)
	}
	uid, err := strconv.Atoi(lines[0])
	if err != nil || uid < testRunUIDLo || uid > testRunUIDHi {
		t.Fatalf("%s: the command's uid %q is not one of executor.runAs's: %s", agent, lines[0], out)
	}
	for _, want := range []string{"CapPrm:\t0000000000000000", "CapEff:\t0000000000000000", "CapAmb:\t0000000000000000",
		"signal-agent: denied", "environ-agent: denied", "setuid-back: denied", "home: ok", "result: exit code 0"} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("%s: the command's output lacks %q:\n%s", agent, want, out)
		}
	}
	left := map[string]bool{}
	for _, l := range lines {
		if pid, ok := strings.CutPrefix(l, "leftover: "); ok {
			left[pid] = true
		}
	}
	if len(left) != 1 {
		t.Fatalf("%s: no leftover pid in %q", agent, out)
	}
	for pid := range left {
		n, _ := strconv.Atoi(pid)
		if !processGone(n) {
			t.Errorf("%s: the run's setsid'd process %d outlived it", agent, n)
		}
	}
}

//go:build linux

package process_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/sandbox"
	"github.com/port-runner/port-runner/internal/sandbox/sandboxtest"
	"github.com/port-runner/port-runner/internal/waitcond"
)

// README "Isolation", proven on the built agent running as a non-root uid (kit:
// sandbox_kit_test.go). Every hostile command here runs as that uid or a runAs uid, never as
// root, and the fork bomb and the memory hog only inside RLIMIT_NPROC of a uid of their own
// or a cgroup this test makes.

// victimScript is a run the probe attacks: it says its pid and run file, and waits with a
// secret in its environment until $1 exists.
const victimScript = `#!/bin/sh
echo "pid: $$"
echo "file: $PORT_RUN_FILE"
while [ ! -e "$1" ]; do sleep 0.1; done
echo "victim: done"
`

// isolationProbeScript is a hostile command: one line per thing it tries ("ok" or "denied"), last
// the SIGKILL of its shim and of the agent, then whether it is still there.
const isolationProbeScript = `#!/bin/sh
shim=$PPID
agent=$(awk '/^PPid:/ {print $2}' /proc/$shim/status)
try() { name=$1; shift; if "$@" >/dev/null 2>&1; then echo "$name: ok"; else echo "$name: denied"; fi; }
echo "uid: $(id -u)"
echo "caps: $(awk '/^CapEff:/ {print $2}' /proc/self/status)"
try signal-shim kill -0 $shim
try signal-agent kill -0 $agent
try signal-other-run kill -0 $VICTIM_PID
try environ-other-run cat /proc/$VICTIM_PID/environ
try environ-agent cat /proc/$agent/environ
try environ-shim cat /proc/$shim/environ
try other-run-file cat "$VICTIM_FILE"
try list-other-run ls "$(dirname "$VICTIM_FILE")"
try credentials cat "$CREDS"
try config cat "$CONFIG"
try own-run-file cat "$PORT_RUN_FILE"
try write-own-dir sh -c 'echo x > "$(dirname "$PORT_RUN_FILE")/x"'
try write-tmpdir sh -c 'echo x > "$TMPDIR/x" && mktemp'
try write-home sh -c 'mkdir -p "$HOME/.cache/tool" && echo x > "$HOME/.cache/tool/x"'
try read-system cat /etc/passwd
try own-child sh -c 'sleep 30 & kill $!'
try kill-agent kill -9 $agent
try kill-shim kill -9 $shim
echo "survived: yes"
`

// isolationProbeWant is what the probe must find, in every mode that claims these boundaries.
var isolationProbeWant = map[string]string{
	"signal-shim": "denied", "signal-agent": "denied", "signal-other-run": "denied",
	"environ-other-run": "denied", "environ-agent": "denied", "environ-shim": "denied",
	"other-run-file": "denied", "list-other-run": "denied", "credentials": "denied", "config": "denied",
	"own-run-file": "ok", "write-own-dir": "ok", "write-tmpdir": "ok", "write-home": "ok", "read-system": "ok", "own-child": "ok",
	"kill-agent": "denied", "kill-shim": "denied", "survived": "yes",
}

// probeActions are the victim and the probe.
func probeActions(w *world, shared string) string {
	victim := w.script("victim.sh", victimScript)
	probe := w.script("probe.sh", isolationProbeScript)
	return fmt.Sprintf(`  victim: {command: [%q, %q], env: {VICTIM_SECRET: '"victim-secret"'}}
  probe:
    command: [%q]
    env: {VICTIM_PID: .properties.pid, VICTIM_FILE: .properties.file, CREDS: '%q', CONFIG: '%q'}
`, victim, filepath.Join(shared, "release-victim"), probe, w.creds, w.config)
}

// runProbe runs the victim, then the probe beside it, and checks what the probe could do.
func runProbe(t *testing.T, w *world, shared string) map[string]string {
	t.Helper()
	w.produce("r_victim", "victim", "{}")
	pid, file := w.logLine("r_victim", "pid:"), w.logLine("r_victim", "file:")
	w.produce("r_probe", "probe", fmt.Sprintf(`{"pid":%q,"file":%q}`, pid, file))
	probe := w.ended("r_probe")
	mustWrite(t, filepath.Join(shared, "release-victim"), "", 0o644)
	if victim := w.ended("r_victim"); victim.Status != "SUCCESS" {
		t.Errorf("the victim run: %s %s", victim.Status, victim.StatusLabel)
	}
	got := logValues(probe)
	if probe.Status != "SUCCESS" || got["survived"] != "yes" {
		t.Errorf("the probe run: %s %q, log %v", probe.Status, probe.StatusLabel, got)
	}
	if !w.healthy() {
		t.Fatal("the agent is gone after the probe")
	}
	return got
}

// checkProbe compares what the probe found with isolationProbeWant, skipping (and saying so) what
// the kernel cannot enforce here.
func checkProbe(t *testing.T, got map[string]string, sandboxed bool) {
	t.Helper()
	abi := sandbox.LandlockABI()
	for check, want := range isolationProbeWant {
		if sandboxed && abi < 6 && (strings.HasPrefix(check, "signal-") || strings.HasPrefix(check, "kill-")) {
			t.Logf("%s: not checked: signal scoping needs Landlock ABI 6, this kernel has %d", check, abi)
			continue
		}
		if got[check] != want {
			t.Errorf("%s: %q, want %q", check, got[check], want)
		}
	}
}

// sharedRW is a directory every uid may write, made before the agent starts (so the
// sandbox allows it when an action lists it).
func sharedRW(t *testing.T, w *world) string {
	dir := filepath.Join(w.dir, "shared")
	mustMkdir(t, dir, 0o777)
	return dir
}

// TestSandboxKeepsACommandToItsRun: with the sandbox (the default), a command of the
// agent's own uid can neither signal the agent, its shim nor another run, nor read another
// run's environ, run file or directory, the agent's config or its credential file, while
// its own directory, HOME, TMPDIR, children and the system's files stay its; its
// `kill -9 $PPID` leaves the agent (and the shim) alive.
func TestSandboxKeepsACommandToItsRun(t *testing.T) {
	if sandbox.LandlockABI() < 1 {
		t.Skip("not checked: the kernel has no Landlock")
	}
	eachShimKind(t, func(t *testing.T, b binaries) {
		w := preWorld(t)
		shared := sharedRW(t, w)
		w.startWith(b, probeActions(w, shared), "", agentSetup{})
		got := runProbe(t, w, shared)
		checkProbe(t, got, true)
		if got["uid"] != strconv.Itoa(agentUID) {
			t.Errorf("the command's uid %q, want the agent's %d", got["uid"], agentUID)
		}
		st := w.isolation()
		if st.Sandbox != "auto" || !strings.Contains(strings.Join(st.Protections, ","), "filesystem,ptrace") || st.Shim != b.kind {
			t.Errorf("/status isolation: %+v, want sandbox auto, the filesystem and ptrace protections, the %s shim", st, b.kind)
		}
	})
}

// TestRunAsKeepsACommandToItsRun: under executor.runAs, with the sandbox and without it,
// each run is a uid of its own with no capability left (the agent's ambient ones
// included), and the same boundaries hold.
func TestRunAsKeepsACommandToItsRun(t *testing.T) {
	eachShimKind(t, func(t *testing.T, b binaries) {
		for _, mode := range []string{"auto", "off"} {
			t.Run("sandbox "+mode, func(t *testing.T) {
				if mode == "auto" && sandbox.LandlockABI() < 1 {
					t.Skip("not checked: the kernel has no Landlock")
				}
				w := preWorld(t)
				shared := sharedRW(t, w)
				executor := fmt.Sprintf("runAs: %q, sandbox: %s", fmt.Sprintf("%d-%d", runUIDLo, runUIDHi), mode)
				w.startWith(b, probeActions(w, shared), executor, agentSetup{ambientCaps: true})
				got := runProbe(t, w, shared)
				checkProbe(t, got, mode == "auto")
				if uid, _ := strconv.Atoi(got["uid"]); uid < runUIDLo || uid > runUIDHi {
					t.Errorf("the command's uid %q is not one of executor.runAs's", got["uid"])
				}
				if got["caps"] != "0000000000000000" {
					t.Errorf("the command's effective capabilities: %q, want none", got["caps"])
				}
			})
		}
	})
}

// TestKilledShimLeavesNothing: with the sandbox off a command can SIGKILL its own shim;
// the agent, a child subreaper, then kills what the shim would have: nothing of the run
// outlives it, and the agent goes on.
func TestKilledShimLeavesNothing(t *testing.T) {
	eachShimKind(t, func(t *testing.T, b binaries) {
		w := preWorld(t)
		script := w.script("escape.sh", `#!/bin/sh
setsid sleep 300 >/dev/null 2>&1 &
echo "escapee: $!"
sh -c 'sleep 300 & echo "grandchild: $!"; wait'  &
sleep 1
kill -9 $PPID
sleep 300
`)
		w.startWith(b, fmt.Sprintf("  escape: {command: [%q], sandbox: off}\n", script), "", agentSetup{})
		w.produce("r_escape", "escape", "{}")
		run := w.ended("r_escape")
		got := logValues(run)
		if run.Status != "FAILURE" {
			t.Errorf("the run whose shim was killed: %s %q", run.Status, run.StatusLabel)
		}
		for _, name := range []string{"escapee", "grandchild"} {
			pid, err := strconv.Atoi(got[name])
			if err != nil {
				t.Fatalf("no %s pid in the run's log: %v", name, got)
			}
			t.Cleanup(func() { killOwn(pid, "r_escape") })
			waitcond.For(t, fmt.Sprintf("the run's %s (%d) to be killed", name, pid), 30*time.Second, func() bool { return processGone(pid) })
		}
		if !w.healthy() {
			t.Fatal("the agent is gone")
		}
		if !strings.Contains(w.agent.Log(), "killed processes a run's killed shim left behind") {
			t.Error("the agent did not say it killed a killed shim's leftovers")
		}
	})
}

// TestTryRunsCommandsAsRunDoes: `port-runner try` runs the command under the shim and the
// sandbox, so a command's `kill -9 $PPID`, and its kill of try itself, fail as under run.
func TestTryRunsCommandsAsRunDoes(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("not checked: the test drops try to another uid, which needs root")
	}
	if sandbox.LandlockABI() < 6 {
		t.Skipf("not checked: signal scoping needs Landlock ABI 6, this kernel has %d", sandbox.LandlockABI())
	}
	eachShimKind(t, func(t *testing.T, b binaries) {
		dir := sharedDir(t)
		killer := filepath.Join(dir, "killer.sh")
		mustWrite(t, killer, `#!/bin/sh
shim=$PPID
agent=$(awk '/^PPid:/ {print $2}' /proc/$shim/status)
kill -9 $agent 2>/dev/null && echo "kill-try: ok" || echo "kill-try: denied"
kill -9 $shim 2>/dev/null && echo "kill-shim: ok" || echo "kill-shim: denied"
cat "$CONFIG" >/dev/null 2>&1 && echo "config: ok" || echo "config: denied"
echo "survived: yes"
`, 0o755)
		cfg := filepath.Join(dir, "config.yaml")
		mustWrite(t, cfg, fmt.Sprintf(`port: {clientID: try-client, clientSecret: try-client-secret-0123456789abcdef, orgID: org_try}
kafka: {brokers: ["127.0.0.1:9"], group: g}
actions:
  killer: {command: [%q], env: {CONFIG: '%q'}}
`, killer, cfg), 0o400)
		if err := os.Chown(cfg, agentUID, agentUID); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(b.agent, "try", "killer", "--config", cfg)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: agentUID, Gid: agentUID}}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		text := out.String()
		if err != nil || !strings.Contains(text, "Status: SUCCESS") {
			t.Fatalf("try: %v\n%s", err, text)
		}
		for _, want := range []string{"kill-try: denied", "kill-shim: denied", "config: denied", "survived: yes"} {
			if !strings.Contains(text, want) {
				t.Errorf("try's output lacks %q:\n%s", want, text)
			}
		}
	})
}

// TestAppetiteFailsItsOwnRun: a fork bomb and a memory hog fail their own run, with a
// label that says which limit, while a run beside them succeeds and the agent lives. Under
// runAs the process limit is RLIMIT_NPROC of the run's own uid; with executor.cgroups the
// run's pids and memory cgroups, inside a cgroup this test made for the agent.
func TestAppetiteFailsItsOwnRun(t *testing.T) {
	bomb := "  bomb: {command: [sh, -c, 'while :; do sleep 60 & done'], limits: {processes: 30}}\n"
	hog := "  hog: {command: [sh, -c, 'dd if=/dev/zero of=/dev/null bs=400M count=1; sleep 60'], limits: {memory: 64MiB}}\n"
	for _, tc := range []struct {
		name, actions, executor string
		cgroup                  bool
		runs                    map[string]string // action: label
	}{
		{"runAs", bomb, fmt.Sprintf("runAs: \"%d-%d\"", runUIDLo, runUIDHi), false,
			map[string]string{"bomb": "limit exceeded: processes (30)"}},
		{"cgroups", bomb + hog, "cgroups: true", true,
			map[string]string{"bomb": "limit exceeded: processes (30)", "hog": "limit exceeded: memory (64MiB)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eachShimKind(t, func(t *testing.T, b binaries) {
				setup := agentSetup{ambientCaps: !tc.cgroup}
				if tc.cgroup {
					cg, err := sandboxtest.NewCgroup(t, agentUID, 400, 768<<20)
					if err != nil {
						t.Skipf("not checked: %v", err)
					}
					setup.cgroup = cg
				}
				w := preWorld(t)
				shared := sharedRW(t, w)
				steady := w.script("steady.sh", "#!/bin/sh\necho \"state: up\"\nwhile [ ! -e \"$1\" ]; do sleep 0.1; done\necho \"steady: done\"\n")
				actions := tc.actions + fmt.Sprintf("  steady: {command: [%q, %q]}\n", steady, filepath.Join(shared, "release-steady"))
				w.startWith(b, actions, tc.executor, setup)
				w.produce("r_steady", "steady", "{}")
				w.logLine("r_steady", "state:")
				for action, label := range tc.runs {
					id := "r_" + action
					w.produce(id, action, "{}")
					if run := w.ended(id); run.Status != "FAILURE" || run.StatusLabel != label {
						t.Errorf("%s: %s %q, want FAILURE %q", action, run.Status, run.StatusLabel, label)
					}
				}
				mustWrite(t, filepath.Join(shared, "release-steady"), "", 0o644)
				if run := w.ended("r_steady"); run.Status != "SUCCESS" {
					t.Errorf("the run beside them: %s %q", run.Status, run.StatusLabel)
				}
				if !w.healthy() {
					t.Fatal("the agent is gone")
				}
			})
		})
	}
}

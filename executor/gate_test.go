//go:build linux

package executor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/shim"
)

// A gated command (Spec.Gate, shim.GateFlag) starts only once the gate passes: the shim is
// started and sets the command up first, and whatever ends it before its go (the gate's
// error, the agent's end of file, the agent killed) leaves the command never started.

// touch is a command whose one trace is the file it makes: if it ever starts, its marker is
// there by the time its shim has exited.
func touch(marker string) []string { return []string{"/bin/sh", "sh", "-c", `: > "$1"`, "sh", marker} }

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

// TestAGatedShimStartsItsCommandOnlyOnGo: the protocol alone. 'G' starts the command; any
// other byte first, or end of file, ends the shim without ever starting it, on the shim's
// plain path and on the one that confines the command (the Go shim's second stage).
func TestAGatedShimStartsItsCommandOnlyOnGo(t *testing.T) {
	var nproc syscall.Rlimit
	if err := syscall.Getrlimit(6, &nproc); err != nil { // RLIMIT_NPROC, as it is: no privilege needed
		t.Fatal(err)
	}
	staged := []string{"--rlimit", fmt.Sprintf("6:%d:%d", int64(nproc.Cur), int64(nproc.Max))}
	eachShim(t, func(t *testing.T, prefix []string) {
		for _, confined := range []bool{false, true} {
			for _, how := range []string{"go", "no", "eof"} {
				t.Run(fmt.Sprintf("%s/confined=%v", how, confined), func(t *testing.T) {
					marker := filepath.Join(t.TempDir(), "ran")
					args := []string{shim.GateFlag, "3"}
					if confined {
						args = append(args, staged...)
					}
					p := startShim(t, prefix, 0, append(append(args, "--"), touch(marker)...)...)
					var err error
					switch how {
					case "go":
						_, err = p.ctl.Write([]byte{shim.Go})
					case "no":
						_, err = p.ctl.Write([]byte{shim.Renew}) // any byte but 'G' first is a no
					case "eof":
						err = p.ctl.Close()
					}
					if err != nil {
						t.Fatal(err)
					}
					ws, msg := p.wait(t, 20*time.Second)
					switch {
					case how == "go" && (ws.ExitStatus() != 0 || !exists(marker)):
						t.Errorf("after 'G': %v, marker there: %v; want the command run, exit 0", ws, exists(marker))
					case how != "go" && exists(marker):
						t.Errorf("the command ran without a go (%s): %v", how, ws)
					case how == "no" && (ws.ExitStatus() != 127 || msg != shim.NotStarted):
						t.Errorf("after another byte first: %v %q, want 127 and %q", ws, msg, shim.NotStarted)
					}
				})
			}
		}
	})
}

// eachWay is eachShim and the run without a shim (prefix nil).
func eachWay(t *testing.T, f func(t *testing.T, prefix []string)) {
	eachShim(t, f)
	t.Run("none", func(t *testing.T) { f(t, nil) })
}

// gatedShims are this process's children waiting for a go: the shims of gated runs.
func gatedShims(t *testing.T) []int {
	t.Helper()
	var out []int
	for _, pid := range childrenOf(os.Getpid()) {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if strings.Contains(string(b), "\x00"+shim.GateFlag+"\x00") {
			out = append(out, pid)
		}
	}
	return out
}

// readied waits, in a gate, until the run's shim is there and, for the C shim, has forked
// the command's process, which waits for the go; it returns their pids.
func readied(t *testing.T, prefix []string) []int {
	t.Helper()
	if prefix == nil {
		return nil
	}
	var ps []int
	waitFor(t, 10*time.Second, "the shim of the gated run", func() bool { ps = gatedShims(t); return len(ps) == 1 })
	if prefix[0] == cShim {
		waitFor(t, 10*time.Second, "the C shim's fork before the go", func() bool { return len(childrenOf(ps[0])) == 1 })
		ps = append(ps, childrenOf(ps[0])...)
	}
	return ps
}

// TestGateHoldsTheCommandUntilItPasses: the run is readied, the shim started (and the C one's
// fork done) before the gate; the command starts only after it, OnStart in between.
func TestGateHoldsTheCommandUntilItPasses(t *testing.T) {
	eachWay(t, func(t *testing.T, prefix []string) {
		marker := filepath.Join(t.TempDir(), "ran")
		started, gated := 0, 0
		res, out := run(t, context.Background(), Spec{Argv: touch(marker)[1:], Shim: prefix,
			OnStart: func(int) {
				if gated == 0 {
					t.Error("OnStart before the gate passed")
				}
				started++
			},
			Gate: func() error {
				gated++
				readied(t, prefix)
				if exists(marker) || started > 0 {
					t.Errorf("the command ran (%v) or OnStart came (%d) before the gate passed", exists(marker), started)
				}
				return nil
			}})
		if !res.Success || !exists(marker) || gated != 1 || started != 1 {
			t.Errorf("%+v (%q): marker %v, gate %d, OnStart %d; want the command run once the gate passed", res, out, exists(marker), gated, started)
		}
	})
}

// TestAClosedGateNeverStartsTheCommand: the gate's error, at once (before a slow shim even
// waits) or once the shim waits, and a cancel while in the gate: the command never starts,
// OnStart never comes, and the shim (and the C one's fork) is gone when Run returns.
func TestAClosedGateNeverStartsTheCommand(t *testing.T) {
	eachWay(t, func(t *testing.T, prefix []string) {
		for _, when := range []string{"at once", "once readied", "cancelled"} {
			t.Run(when, func(t *testing.T) {
				marker := filepath.Join(t.TempDir(), "ran")
				ctx, cancel := context.WithCancelCause(context.Background())
				defer cancel(nil)
				var ps []watchedProcess
				res, out := run(t, ctx, Spec{Argv: touch(marker)[1:], Shim: prefix,
					OnStart: func(int) { t.Error("OnStart for a command that must not start") },
					Gate: func() error {
						if when == "at once" {
							return errors.New("the lease is gone")
						}
						for _, pid := range readied(t, prefix) {
							ps = append(ps, watchProcess(t, pid))
						}
						if when == "cancelled" {
							cancel(errors.New("stopped"))
							return nil
						}
						return errors.New("the lease is gone")
					}})
				want := "not started: the lease is gone"
				if when == "cancelled" {
					want = CancelLabel(errors.New("stopped"))
				}
				if res.Success || res.Label != want || exists(marker) || out != "" {
					t.Errorf("%+v (%q), marker %v; want %q and the command never started", res, out, exists(marker), want)
				}
				for _, p := range ps {
					if !p.gone() {
						t.Errorf("process %d of the unstarted run still there once Run returned", p.pid)
					}
				}
			})
		}
	})
}

// TestHelperGatedAgent is not a real test: a fake agent whose run's gate never passes; it
// prints the pids of the run's shim (and of the C one's fork) once they wait for the go.
func TestHelperGatedAgent(t *testing.T) {
	env := os.Getenv("EXECUTOR_TEST_GATED")
	if env == "" {
		t.Skip("helper process only")
	}
	f := strings.Split(env, "|") // the shim's prefix, the marker, the C shim
	prefix, marker := strings.Fields(f[0]), f[1]
	cShim = f[2]
	Run(context.Background(), Spec{Argv: touch(marker)[1:], Shim: prefix, Gate: func() error {
		ps := readied(t, prefix)
		fmt.Println(strings.Trim(fmt.Sprint(ps), "[]"))
		select {} // never passes: the agent dies here
	}}, os.Stdout)
	os.Exit(0)
}

// TestAGatedShimOfAKilledAgentNeverStartsItsCommand: the agent dies (SIGKILL) between the
// shim's start and its go: the shim (and the C one's fork) ends without starting the command.
func TestAGatedShimOfAKilledAgentNeverStartsItsCommand(t *testing.T) {
	eachShim(t, func(t *testing.T, prefix []string) {
		marker := filepath.Join(t.TempDir(), "ran")
		agent, line := startFakeAgent(t, "TestHelperGatedAgent",
			"EXECUTOR_TEST_GATED="+strings.Join(prefix, " ")+"|"+marker+"|"+cShim)
		ps := pids(t, line)
		if err := agent.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = agent.Wait()
		waitAllGone(t, "after the agent was SIGKILLed before the go", ps)
		if exists(marker) {
			t.Error("the command started though the agent died before its go")
		}
	})
}

package executor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestHelperReaperAgent is not a real test: TestReaperKillsOnlyWhatNoRunOwns runs the test
// binary as a fake agent of another uid that is a child subreaper, with two runs under the
// shim named by EXECUTOR_TEST_REAPER: one waits, the other leaves an escapee and SIGKILLs
// its own shim (no sandbox stops it). It prints what became of each.
func TestHelperReaperAgent(t *testing.T) {
	prefix := os.Getenv("EXECUTOR_TEST_REAPER")
	if prefix == "" {
		t.Skip("helper process only")
	}
	reaper, reaped, stop := startHelperReaper()
	release := filepath.Join(os.Getenv("EXECUTOR_TEST_BASE"), "release")
	shimPrefix := strings.Fields(prefix)
	waiting := newNotifyWriter()
	waitingDone := make(chan Result, 1)
	go func() {
		waitingDone <- Run(context.Background(), Spec{Argv: []string{"sh", "-c", `echo up; while [ ! -e "$1" ]; do sleep 0.05; done`, "sh", release},
			Shim: shimPrefix, Reaper: reaper}, waiting)
	}()
	<-waiting.lines
	label, gone := runKiller(reaper, shimPrefix, "setsid sleep 60 >/dev/null 2>&1 & echo $!")
	fmt.Printf("killer: %s\n", label)
	fmt.Printf("escapee-gone: %v\n", gone)
	must(os.WriteFile(release, nil, 0o644))
	fmt.Printf("waiting: %s\n", (<-waitingDone).Label)
	stop()
	fmt.Printf("reaped-some: %v\n", reaped.Load() > 0)
	fmt.Printf("result: done\n")
	os.Exit(0)
}

// runKiller runs, under shim, a run whose command runs leave (which starts the escapee and
// prints its pid as its first line) and then SIGKILLs its own shim. It returns the run's
// label and whether the escapee was gone 20 s after the run ended at the latest.
//
// The escapee is watched through a pidfd, opened while it surely lives: the command kills
// its shim (before which nothing may kill the escapee) only once the file named by its $1
// exists. Its pid number alone would not do: pids are reused (pid_max is 32768 on many
// machines, and a fork bomb held by a pids cgroup burns thousands a second), so once the
// escapee is gone its number may name another process, which would look like the escapee
// still alive.
func runKiller(reaper *Reaper, shim []string, leave string) (label string, escapeeGone bool) {
	killNow := filepath.Join(os.Getenv("EXECUTOR_TEST_BASE"), "kill-now")
	killer := newNotifyWriter()
	done := make(chan Result, 1)
	go func() {
		done <- Run(context.Background(), Spec{Argv: []string{"sh", "-c", leave + "\n" + `while [ ! -e "$1" ]; do sleep 0.01; done; kill -9 $PPID; sleep 60`, "sh", killNow},
			Shim: shim, Reaper: reaper}, killer)
	}()
	escapee, err := strconv.Atoi(strings.TrimSpace(<-killer.lines))
	must(err)
	pidfd, err := unix.PidfdOpen(escapee, 0)
	must(err)
	defer unix.Close(pidfd)
	must(os.WriteFile(killNow, nil, 0o644))
	label = (<-done).Label
	escapeeGone = exitedWithin(pidfd, 20*time.Second)
	if !escapeeGone {
		_ = unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0) // the test failed: leave nothing behind
	}
	return label, escapeeGone
}

// exitedWithin waits up to d for the process of pidfd to exit; a zombie has.
func exitedWithin(pidfd int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(max(time.Until(deadline), 0).Milliseconds()))
		if err != unix.EINTR {
			return n == 1
		}
	}
}

// startHelperReaper makes the helper process a child subreaper and sweeps until stop, which
// returns once the sweeping ended; reaped counts what it killed. configure, if any, changes
// the reaper before it starts.
func startHelperReaper(configure ...func(*Reaper)) (reaper *Reaper, reaped *atomic.Int64, stop func()) {
	reaped = new(atomic.Int64)
	reaper, err := NewReaper(func(n int) { reaped.Add(int64(n)) })
	must(err)
	for _, c := range configure {
		c(reaper)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { reaper.Run(ctx); close(done) }()
	return reaper, reaped, func() { cancel(); <-done }
}

// TestReaperKillsOnlyWhatNoRunOwns: a run that SIGKILLs its shim leaves an escapee behind,
// which the agent (a child subreaper) kills, while the run beside it, whose shim is the
// agent's child too, goes on to its own end. The hostile command runs as uid 65534.
func TestReaperKillsOnlyWhatNoRunOwns(t *testing.T) {
	reaperAgentPrints(t, "TestHelperReaperAgent",
		map[string]string{"killer": "killed by signal killed", "escapee-gone": "true", "waiting": "exit code 0", "reaped-some": "true"})
}

// reaperAgentPrints runs the fake agent of the helper test named under each shim and
// checks that it printed want.
func reaperAgentPrints(t *testing.T, helper string, want map[string]string) {
	eachShim(t, func(t *testing.T, prefix []string) {
		got := runAsHelper(t, helper, "EXECUTOR_TEST_REAPER="+strings.Join(sharedPrefix(t, prefix), " "))
		for k, want := range want {
			if got[k] != want {
				t.Errorf("%s: %q, want %q (all: %v)", k, got[k], want, got)
			}
		}
	})
}

// TestHelperOrphanReaperAgent is not a real test: TestReaperFindsWhatADyingOrphanHandsOver
// runs the test binary as a fake agent of another uid that is a child subreaper without
// timed sweeps, whose first sweep finds every orphan it lists dead by the time it reaps
// them. One run under the shim named by EXECUTOR_TEST_REAPER leaves an orphan holding the
// escapee as its child, then SIGKILLs its own shim. It prints what became of them.
func TestHelperOrphanReaperAgent(t *testing.T) {
	prefix := os.Getenv("EXECUTOR_TEST_REAPER")
	if prefix == "" {
		t.Skip("helper process only")
	}
	var listed atomic.Bool
	reaper, reaped, stop := startHelperReaper(func(r *Reaper) {
		r.interval = time.Hour
		// The race, forced: every orphan the first sweep lists dies right after, handing
		// its children to the agent after the list was read and before the sweep reaps it.
		// Each is the helper's own unreaped child, so its pid names nothing else.
		r.children = func(ppid int) []int {
			pids := childrenOf(ppid)
			if !listed.Swap(true) {
				for _, pid := range pids {
					must(syscall.Kill(pid, syscall.SIGKILL))
					waitExited(pid)
				}
			}
			return pids
		}
	})
	label, gone := runKiller(reaper, strings.Fields(prefix), "setsid sh -c 'sleep 60 >/dev/null 2>&1 & echo $!; wait' &")
	fmt.Printf("killer: %s\n", label)
	fmt.Printf("escapee-gone: %v\n", gone)
	stop()
	fmt.Printf("reaped-some: %v\n", reaped.Load() > 0)
	fmt.Printf("result: done\n")
	os.Exit(0)
}

// waitExited waits until the child pid has exited, leaving it unreaped.
func waitExited(pid int) {
	var info unix.Siginfo
	for unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil) == unix.EINTR {
	}
}

// TestReaperFindsWhatADyingOrphanHandsOver: an orphan that dies while a sweep runs, after
// the sweep listed the agent's children, hands its own children (here the escapee) to the
// agent too late for that list. The sweep reaps it all the same; the Reaper must look
// again then, not wait for its timed sweep (it did: 2 of 63 loaded runs of
// TestReaperKillsOnlyWhatNoRunOwns left the escapee for its whole 20 s without them).
func TestReaperFindsWhatADyingOrphanHandsOver(t *testing.T) {
	reaperAgentPrints(t, "TestHelperOrphanReaperAgent",
		map[string]string{"killer": "killed by signal killed", "escapee-gone": "true", "reaped-some": "true"})
}

// TestHelperBusyReaperAgent is not a real test: TestReaperLeavesStartingRunsAlone runs the
// test binary as a fake agent that is a child subreaper, with many short runs at once under
// the shim named by EXECUTOR_TEST_REAPER, and prints how many the reaper killed and how
// often it started listening for SIGCHLD.
func TestHelperBusyReaperAgent(t *testing.T) {
	prefix := os.Getenv("EXECUTOR_TEST_REAPER")
	if prefix == "" {
		t.Skip("helper process only")
	}
	var listened atomic.Int64
	reaper, reaped, stop := startHelperReaper(func(r *Reaper) {
		r.listen = func(c chan<- os.Signal, on bool) {
			if on {
				listened.Add(1)
			}
			listenSIGCHLD(c, on)
		}
	})
	var failed atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 60 {
				if res := Run(context.Background(), Spec{Argv: []string{"/bin/true"}, Shim: strings.Fields(prefix), Reaper: reaper}, nil); !res.Success {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	stop()
	fmt.Printf("failed: %d\n", failed.Load())
	fmt.Printf("reaped: %d\n", reaped.Load())
	fmt.Printf("listened: %d\n", listened.Load())
	fmt.Printf("result: done\n")
	os.Exit(0)
}

// TestReaperLeavesStartingRunsAlone: with many runs at once a sweep often comes between a
// shim's fork and its registration; it must never take that shim for an orphan (it did:
// about 600 of these 960 runs failed, killed by the reaper). With no orphan to wait for, it
// never listens for the SIGCHLD each shim sends as it ends (it did, waking the agent twice
// a run for nothing).
func TestReaperLeavesStartingRunsAlone(t *testing.T) {
	eachShim(t, func(t *testing.T, prefix []string) {
		got := runAsHelper(t, "TestHelperBusyReaperAgent", "EXECUTOR_TEST_REAPER="+strings.Join(sharedPrefix(t, prefix), " "))
		if got["failed"] != "0" || got["reaped"] != "0" {
			t.Errorf("of 960 /bin/true runs, %s failed and the reaper killed %s processes; want none", got["failed"], got["reaped"])
		}
		if got["listened"] != "0" {
			t.Errorf("the reaper listened for SIGCHLD %s times with no orphan to reap; want never", got["listened"])
		}
	})
}

// TestChildrenOf: the reaper's two ways of listing the agent's children (its threads'
// children lists, and every process's stat where the kernel has no such lists) find the
// same children: a process this test started, and not the test's parent.
func TestChildrenOf(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	fromThreads, ok := threadChildren(os.Getpid())
	if !ok {
		t.Log("not checked: this kernel has no /proc/PID/task/TID/children")
	}
	for name, pids := range map[string][]int{"threads' children lists": fromThreads, "every process's stat": scanChildren(os.Getpid())} {
		if name == "threads' children lists" && !ok {
			continue
		}
		if !slices.Contains(pids, cmd.Process.Pid) || slices.Contains(pids, os.Getppid()) {
			t.Errorf("%s: %v, want the child %d and not the parent %d", name, pids, cmd.Process.Pid, os.Getppid())
		}
	}
}

// TestAReusedPidStaysTheNewRuns: a run tells the reaper its process is reaped only after
// reaping it, and by then a new run's process may have the pid (pids are reused). The new
// run's registration must stay, or the next sweep takes its shim for an orphan and kills it.
func TestAReusedPidStaysTheNewRuns(t *testing.T) {
	r := &Reaper{started: map[int]uint64{}, killed: map[int]bool{}, kick: make(chan struct{}, 1)}
	const pid = 4242
	r.starting()
	older := r.register(pid) // the old run's process, reaped by its run
	r.starting()
	newer := r.register(pid) // a new run's, forked with the pid meanwhile
	older.ended(false)
	if _, ours := r.started[pid]; !ours {
		t.Fatal("the old run's end took the new run's process off the reaper's list")
	}
	newer.ended(false)
	if _, ours := r.started[pid]; ours {
		t.Fatal("the new run's end left its pid on the list")
	}
}

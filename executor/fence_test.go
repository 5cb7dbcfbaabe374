package executor

import (
	"context"
	"fmt"
	"io"
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
	"testing/synctest"
	"time"
)

// withAndWithoutShim runs f with each shim, and with none (the executor enforces the fence).
func withAndWithoutShim(t *testing.T, f func(t *testing.T, prefix []string)) {
	eachShim(t, f)
	t.Run("none", func(t *testing.T) { f(t, nil) })
}

// sharedRenewals is a Renewals running for the test's life for commands of fence, or nil
// (each run renews its own lease) when shared is false.
func sharedRenewals(t *testing.T, shared bool, fence time.Duration) *Renewals {
	if !shared {
		return nil
	}
	r := NewRenewals(fence / 4)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { r.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return r
}

// eachRenewal runs f with the run renewing its own lease and with shared Renewals.
func eachRenewal(t *testing.T, f func(t *testing.T, shared bool)) {
	for _, shared := range []bool{false, true} {
		t.Run(map[bool]string{false: "own", true: "shared"}[shared], func(t *testing.T) { f(t, shared) })
	}
}

// TestFenceKeepsAHeldCommand: while the lease holds, renewals keep the command alive past
// many fences, and it ends as it would have; renewed by its run or by shared Renewals. A
// shim rightly ends a command whose renewals a starved machine delayed by most of a fence:
// an attempt that saw them come late (Held is asked at each) proves nothing, and is made
// again with a fence twice as long; one that saw them in time must see the command finish.
func TestFenceKeepsAHeldCommand(t *testing.T) {
	eachRenewal(t, func(t *testing.T, shared bool) {
		withAndWithoutShim(t, func(t *testing.T, prefix []string) {
			for fence := 400 * time.Millisecond; ; fence *= 2 {
				late := keptHeld(t, prefix, shared, fence)
				if late == 0 {
					return
				}
				if fence >= 3200*time.Millisecond {
					t.Fatalf("the command was killed though held, its renewals late in every attempt (fences 400ms to %s; at the last, %s apart)", fence, late)
				}
				t.Logf("killed with renewals %s apart, fence %s: the machine starved them; again with a longer fence", late, fence)
			}
		})
	})
}

// keptHeld runs a held command of five fences under prefix's shim and fails t unless it
// finishes, or is killed at its fence after renewals late by half a fence or more (what
// it then returns: how far apart they came; 0 when it finished).
func keptHeld(t *testing.T, prefix []string, shared bool, fence time.Duration) time.Duration {
	var held renewalTimes
	start := time.Now()
	res, out := run(t, context.Background(), Spec{
		Argv: []string{"sh", "-c", fmt.Sprintf("sleep %.1f; echo done", (5 * fence).Seconds())}, Shim: prefix,
		Fence: fence, Held: held.held, Renewals: sharedRenewals(t, shared, fence),
	})
	if res.Success && out == "done\n" {
		return 0
	}
	late := held.longest(start, time.Now())
	if res.Label != "killed by signal killed" || late < fence/2 {
		t.Fatalf("a held command: %+v, output %q, renewals at most %s apart (fence %s); want it to finish", res, out, late, fence)
	}
	return late
}

// renewalTimes is when a lease's Held was asked: twice a renewal, before it and after.
type renewalTimes struct {
	mu sync.Mutex
	at []time.Time
}

func (r *renewalTimes) held() bool {
	r.mu.Lock()
	r.at = append(r.at, time.Now())
	r.mu.Unlock()
	return true
}

// longest is the longest time from start, or from one renewal's start, to the next one's
// end, or to end: renewals due every quarter fence come this far apart.
func (r *renewalTimes) longest(start, end time.Time) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	from, longest := start, time.Duration(0)
	for i := 0; i+1 < len(r.at); i += 2 {
		longest, from = max(longest, r.at[i+1].Sub(from)), r.at[i]
	}
	return max(longest, end.Sub(from))
}

// TestFenceKillsTheCommandWhenTheLeaseIsLost: once Held says no, renewals stop and the
// command's tree (an escapee included) is killed within the fence, though it ignores
// SIGTERM and nothing cancelled it: the shim (or, without one, the executor) enforces it.
func TestFenceKillsTheCommandWhenTheLeaseIsLost(t *testing.T) {
	eachRenewal(t, func(t *testing.T, shared bool) { fenceKills(t, shared) })
}

func fenceKills(t *testing.T, shared bool) {
	withAndWithoutShim(t, func(t *testing.T, prefix []string) {
		var held atomic.Bool
		held.Store(true)
		w := newNotifyWriter()
		done := make(chan Result, 1)
		go func() {
			done <- Run(context.Background(), Spec{
				Argv: []string{"sh", "-c", "trap '' TERM; " + escapees + "; sleep 60"}, Shim: prefix,
				Fence: 500 * time.Millisecond, Held: held.Load, Renewals: sharedRenewals(t, shared, 500*time.Millisecond),
			}, w)
		}()
		waitFor(t, 20*time.Second, "the command's pids", func() bool { return strings.Contains(w.String(), "\n") })
		ps := pids(t, strings.TrimSpace(w.String()))
		held.Store(false)
		select {
		case res := <-done:
			if res.Success || res.Label != "killed by signal killed" {
				t.Errorf("fenced command: %+v, want killed by signal killed", res)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the command outlived its lease by 30s (fence 500ms)")
		}
		if prefix != nil { // without a shim an escapee outlives the group (README "Isolation")
			waitAllGone(t, "after the fence", ps)
		}
	})
}

// TestHelperFrozenAgent is not a real test: a fake agent that runs a command under the shim
// named by EXECUTOR_TEST_FENCE_SHIM with a fence of 1s, always holding the lease, and prints
// the command's pid; the test then freezes it.
func TestHelperFrozenAgent(t *testing.T) {
	prefix := os.Getenv("EXECUTOR_TEST_FENCE_SHIM")
	if prefix == "" {
		t.Skip("helper process only")
	}
	Run(context.Background(), Spec{
		Argv: []string{"sh", "-c", "echo $$; exec sleep 60"}, Shim: strings.Fields(prefix),
		Fence: time.Second, Held: func() bool { return true },
	}, os.Stdout)
	os.Exit(0)
}

// TestFenceKillsTheCommandsOfAFrozenAgent: an agent stopped by SIGSTOP (a long GC pause, a
// frozen VM) cannot renew, and cannot act: its shim kills the command on its own.
func TestFenceKillsTheCommandsOfAFrozenAgent(t *testing.T) {
	eachShim(t, func(t *testing.T, prefix []string) {
		agent, line := startFakeAgent(t, "TestHelperFrozenAgent", "EXECUTOR_TEST_FENCE_SHIM="+strings.Join(prefix, " "))
		ps := pids(t, line)
		if err := agent.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = agent.Process.Signal(syscall.SIGCONT) })
		waitAllGone(t, "while the agent is frozen", ps) // 10s: the command sleeps 60s
	})
}

// TestHelperLastingAgent is not a real test: a fake agent that runs three commands under the
// shim named by EXECUTOR_TEST_LASTING_SHIM with a fence of 1s: one under a lease that lasts
// only while renewed, one under a lease lasting 2 minutes whatever becomes of the agent,
// one under one lasting 4s. Once every lasting lease has been told to its shim it prints
// the three commands' pids; the test then freezes it.
func TestHelperLastingAgent(t *testing.T) {
	prefix := os.Getenv("EXECUTOR_TEST_LASTING_SHIM")
	if prefix == "" {
		t.Skip("helper process only")
	}
	leases := []time.Duration{0, 2 * time.Minute, 4 * time.Second}
	// Each lasting lease counts from when its run first asks it, not from this helper's
	// start: on a loaded machine the 4s one could end before its command even started, and
	// then it is never told (and this helper never prints).
	firstAsked := make([]func() time.Time, len(leases))
	for i := range leases {
		firstAsked[i] = sync.OnceValue(time.Now)
	}
	pidOf := make([]chan string, len(leases))
	told := make(chan struct{}, len(leases))
	lasting := make(chan struct{})
	close(lasting)
	for i, lease := range leases {
		w := newNotifyWriter()
		pidOf[i] = make(chan string, 1)
		go func() {
			waitFor(t, 20*time.Second, "the command's pid", func() bool { return strings.Contains(w.String(), "\n") })
			pidOf[i] <- strings.TrimSpace(w.String())
		}()
		spec := Spec{
			Argv: []string{"sh", "-c", "echo $$; exec sleep 300"}, Shim: strings.Fields(prefix),
			Fence: time.Second, Held: func() bool { return lease == 0 || time.Since(firstAsked[i]()) < lease },
		}
		if lease > 0 {
			spec.Lasts = func() time.Duration { return max(lease-time.Since(firstAsked[i]()), 0) }
			spec.Lasting = lasting
			spec.OnLasting = func(time.Duration) { told <- struct{}{} }
		}
		go Run(context.Background(), spec, w)
	}
	var line []string
	for i := range leases {
		line = append(line, <-pidOf[i])
	}
	for range len(leases) - 1 {
		<-told
	}
	fmt.Println(strings.Join(line, " "))
	select {} // until the test kills it
}

// TestALastingLeaseOutlivesAFrozenAgentUntilItsEnd: a lease that lasts a known time
// whatever becomes of the agent (a drained replica's, Spec.Lasts) keeps its command alive
// through a freeze of the agent that kills a command under a renewed lease (the fence), and
// ends it at its end, though the agent is still frozen and never renews again.
func TestALastingLeaseOutlivesAFrozenAgentUntilItsEnd(t *testing.T) {
	eachShim(t, func(t *testing.T, prefix []string) {
		agent, line := startFakeAgent(t, "TestHelperLastingAgent", "EXECUTOR_TEST_LASTING_SHIM="+strings.Join(prefix, " "))
		if err := agent.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = agent.Process.Signal(syscall.SIGCONT) })
		ps := pids(t, line)
		if len(ps) != 3 {
			t.Fatalf("want 3 pids, got %q", line)
		}
		waitAllGone(t, "under a renewed lease while the agent is frozen", ps[:1]) // fence 1s
		if ps[1].gone() {
			t.Errorf("the command under a lease lasting 2m died while the agent was frozen, its fence past")
		}
		waitAllGone(t, "under a lease lasting 4s while the agent is frozen", ps[2:])
		if ps[1].gone() {
			t.Errorf("the command under a lease lasting 2m died while the agent was frozen")
		}
	})
}

// TestRenewalOfALeaseLostMeanwhileKills: an agent paused between asking whether it holds the
// lease and renewing it (a freeze, a GC pause) renews a lease it may no longer hold; the
// executor asks again after every renewal and kills the command at once when the answer
// changed, rather than leave it a whole fence.
func TestRenewalOfALeaseLostMeanwhileKills(t *testing.T) {
	ours, shimEnd := controlSockets(t, true) // so that reads keep their deadlines
	defer ours.Close()
	defer shimEnd.Close()
	var asked atomic.Int32
	held := func() bool { return asked.Add(1) == 1 } // held when asked first, lost by the second time
	l := renewLease(Spec{Fence: time.Hour, Held: held}, &process{ctl: controlOf(t, ours)})
	defer l.stop()
	l.renew()
	_ = shimEnd.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, 2)
	if _, err := io.ReadFull(shimEnd, got); err != nil || string(got) != "RK" {
		t.Fatalf("the shim got %q (%v), want a renewal, then the kill", got, err)
	}
	l.renew()
	_ = shimEnd.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, _ := shimEnd.Read(got); n != 0 {
		t.Fatalf("renewed again after the kill: %q", got[:n])
	}
}

// TestRenewalOfALastingLeaseAsksAgain: a lasting lease (Spec.Lasts) is asked again after
// its renewal, like any: one a pause has shortened meanwhile by more than an eighth of the
// fence is renewed again with its rest, one that ended meanwhile kills the command. The
// first renewal that told the shim the lease lasts is told to OnLasting, and only it.
func TestRenewalOfALastingLeaseAsksAgain(t *testing.T) {
	for _, tc := range []struct {
		name      string
		lasts     []time.Duration // Spec.Lasts's answers, in turn; the last one for ever after
		shim      string          // what the shim gets from two renewals
		onLasting []time.Duration
	}{
		{"unchanged", []time.Duration{2 * time.Minute}, "L120000;L120000;", []time.Duration{2 * time.Minute}},
		{"shortened", []time.Duration{2 * time.Minute, time.Minute}, "L120000;L60000;L60000;", []time.Duration{time.Minute}},
		{"shortened by less than fence/8", []time.Duration{2 * time.Minute, 2*time.Minute - 900*time.Millisecond}, "L120000;L119100;", []time.Duration{2 * time.Minute}},
		{"ended", []time.Duration{2 * time.Minute, 0}, "L120000;K", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ours, shimEnd := controlSockets(t, true) // so that reads keep their deadlines
			defer ours.Close()
			defer shimEnd.Close()
			asked := 0
			var told []time.Duration
			l := renewLease(Spec{Fence: 8 * time.Second, Held: func() bool { return true },
				Lasts: func() time.Duration {
					asked++
					return tc.lasts[min(asked, len(tc.lasts))-1]
				},
				OnLasting: func(d time.Duration) { told = append(told, d) },
			}, &process{ctl: controlOf(t, ours)})
			defer l.stop()
			l.renew()
			l.renew()
			_ = shimEnd.SetReadDeadline(time.Now().Add(10 * time.Second))
			got := make([]byte, len(tc.shim))
			if _, err := io.ReadFull(shimEnd, got); err != nil || string(got) != tc.shim {
				t.Fatalf("the shim got %q (%v), want %q", got, err, tc.shim)
			}
			_ = shimEnd.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if n, _ := shimEnd.Read(got); n != 0 {
				t.Fatalf("the shim got %q more", got[:n])
			}
			if !slices.Equal(told, tc.onLasting) {
				t.Fatalf("OnLasting heard %v, want %v", told, tc.onLasting)
			}
		})
	}
}

// TestOnlyARenewalRenewsTheFence: a Terminate the agent sends (a cancel it decided on, maybe
// late, after a pause) does not renew the command's lease: a command that ignores SIGTERM
// is killed at its fence though Terminates keep coming. They come only once the command
// ignores SIGTERM (else the first would end it, as on a loaded machine where its shell
// starts slowly); a command that starts only past its fence heard none, proves nothing, and
// is started again with a fence twice as long.
func TestOnlyARenewalRenewsTheFence(t *testing.T) {
	eachShim(t, func(t *testing.T, prefix []string) {
		for fence := time.Second; !terminatesCameWithin(t, prefix, fence); fence *= 2 {
			if fence >= 16*time.Second {
				t.Fatalf("the command was not running before its fence of %s (fence 1s to %[1]s): a machine this slow proves nothing", fence)
			}
			t.Logf("the command ran only past its fence of %s: no Terminate came, again with a longer fence", fence)
		}
	})
}

// terminatesCameWithin runs a command that ignores SIGTERM under prefix's shim with fence,
// sends a Terminate every 100ms once it runs, and fails t unless its shim ends it at the
// fence (killed by SIGKILL); it says whether any Terminate came while it ran.
func terminatesCameWithin(t *testing.T, prefix []string, fence time.Duration) bool {
	ctl, shimEnd := controlSockets(t, false)
	defer ctl.Close()
	running := filepath.Join(t.TempDir(), "running")
	args := append(append([]string(nil), prefix[1:]...), "--fence", strconv.FormatInt(fence.Milliseconds(), 10),
		"--", "/bin/sh", "sh", "-c", `trap '' TERM; : > "$1"; sleep 60`, "sh", running)
	cmd := exec.Command(prefix[0], args...)
	cmd.ExtraFiles = []*os.File{shimEnd}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	shimEnd.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(30*time.Second + fence)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	sent := 0
	for {
		select {
		case err := <-exited:
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("the shim ended with %v after %d Terminates, want killed like its command", err, sent)
			}
			return sent > 0
		case <-tick.C:
			if _, err := os.Stat(running); err == nil {
				_, _ = ctl.Write([]byte{'T'})
				sent++
			}
		case <-deadline:
			_ = cmd.Process.Kill()
			t.Fatalf("%d Terminates kept the command alive 30s past a fence of %s", sent, fence)
		}
	}
}

// TestRenewalsOfAllCommandsComeTogether: leases started at different times are renewed at
// the same instants, the multiples of a quarter fence, never further apart than that: a
// thousand sleeping commands wake the agent once a period, not a thousand times.
func TestRenewalsOfAllCommandsComeTogether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const fence = 4 * time.Second
		period := fence / 4
		held := func() bool { return true }
		var leases []*leaseRenewal
		var last []time.Time
		for i := range 3 {
			time.Sleep(time.Duration(i+1) * 100 * time.Millisecond) // started apart, within a period
			l := renewLease(Spec{Fence: fence, Held: held}, &process{})
			defer l.stop()
			leases, last = append(leases, l), append(last, time.Now())
		}
		for n := range 3 {
			var at []time.Time
			for i, l := range leases {
				now := <-l.tick()
				if now.UnixNano()%int64(period) != 0 || now.Sub(last[i]) > period {
					t.Errorf("lease %d renewed at %v, %v after its start or last renewal: not on a beat of %v", i, now, now.Sub(last[i]), period)
				}
				l.timer.Reset(beat(period))
				at, last[i] = append(at, now), now
			}
			if !at[0].Equal(at[1]) || !at[1].Equal(at[2]) {
				t.Errorf("beat %d: renewals at %v, want one instant", n, at)
			}
		}
	})
}

// TestRenewalNeverWaitsForAShimThatDoesNotRead: one goroutine renews every command's lease
// (Renewals), so a shim that stopped reading its socket (its command stopped it, say) and
// whose socket is full must not hold it up: the renewal is dropped, and that shim's own
// fence ends its command.
func TestRenewalNeverWaitsForAShimThatDoesNotRead(t *testing.T) {
	ours, shimEnd := controlSockets(t, true)
	defer ours.Close()
	defer shimEnd.Close()
	rc, err := ours.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	full := make([]byte, 64<<10)
	for filled := false; !filled; {
		_ = rc.Write(func(fd uintptr) bool {
			_, err := syscall.Write(int(fd), full)
			filled = err == syscall.EAGAIN
			return true
		})
	}
	var asked atomic.Int32
	held := func() bool { return asked.Add(1) < 3 } // held at the first renewal, lost at the second
	l := renewLease(Spec{Fence: time.Hour, Held: held}, &process{ctl: controlOf(t, ours)})
	defer l.stop()
	done := make(chan struct{})
	go func() {
		l.renew() // a renewal, into the full socket
		l.renew() // the lease lost: a kill, into the full socket
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("a renewal waited for a shim that does not read its socket")
	}
}

// TestTinyFencesDoNotBreakRenewals: a fence under four milliseconds (a misconfiguration)
// neither panics nor spins: renewals every millisecond at most.
func TestTinyFencesDoNotBreakRenewals(t *testing.T) {
	for _, period := range []time.Duration{0, -time.Second, time.Nanosecond} {
		if d := beat(period); d <= 0 || d > time.Millisecond {
			t.Errorf("beat(%v) = %v, want (0, 1ms]", period, d)
		}
	}
	l := renewLease(Spec{Fence: 2 * time.Nanosecond, Held: func() bool { return true }, Renewals: NewRenewals(0)}, &process{})
	defer l.stop()
	if l.shared != nil || l.period != time.Millisecond {
		t.Errorf("a 2ns fence: shared %v, period %v; want its own renewals every 1ms", l.shared != nil, l.period)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	NewRenewals(-time.Second).Run(ctx) // returns at once: nothing to renew
	if ctx.Err() != nil {
		t.Error("Renewals with a period under a millisecond ran until its context ended")
	}
}

// TestAPanicInOnLastingLeavesTheRenewalUsable: OnLasting is told outside the renewal's lock;
// one that panics must reach Run's recover with the lock as it was, not end the agent
// ("unlock of unlocked mutex" cannot be recovered), and the renewal stops as usual after.
func TestAPanicInOnLastingLeavesTheRenewalUsable(t *testing.T) {
	ours, shimEnd := controlSockets(t, true)
	defer ours.Close()
	defer shimEnd.Close()
	l := renewLease(Spec{Fence: 8 * time.Second, Held: func() bool { return true },
		Lasts:     func() time.Duration { return 2 * time.Minute },
		OnLasting: func(time.Duration) { panic("OnLasting failed") },
	}, &process{ctl: controlOf(t, ours)})
	got := func() (r any) {
		defer func() { r = recover() }()
		l.renew()
		return nil
	}()
	if got != "OnLasting failed" {
		t.Fatalf("renew's panic was %v, want OnLasting's", got)
	}
	stopped := make(chan struct{})
	go func() { l.stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the renewal's lock is still held after OnLasting's panic")
	}
}

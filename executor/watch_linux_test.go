package executor

import (
	"bufio"
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// osThreads is how many OS threads this process has.
func osThreads(t *testing.T) int {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no Threads line in /proc/self/status")
	return 0
}

// A command waiting for something (an approval, a deployment) must not hold an OS thread of
// the agent: a thousand of them would be a thousand threads, each read by every sweep of the
// reaper. Commands under the shim are waited for in the runtime's poller (a pidfd).
func TestSleepingCommandsHoldNoThread(t *testing.T) {
	const n = 64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	before := osThreads(t)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for i := range n {
		started := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := Run(ctx, Spec{Argv: []string{"sleep", "60"}, Shim: []string{tinyShim}, KillGrace: time.Second,
				OnStart: func(int) { close(started) }}, nil)
			if res.Success {
				t.Errorf("a cancelled sleep succeeded: %+v", res)
			}
		}()
		// One start at a time: concurrent forks may make threads of their own, which the
		// runtime keeps; this is about what a started command holds.
		select {
		case <-started:
		case <-time.After(time.Minute):
			t.Fatalf("command %d did not start", i)
		}
	}
	if got := osThreads(t); got-before >= n/2 {
		t.Errorf("%d sleeping commands: %d OS threads, %d before them; want fewer than %d more", n, got, before, n/2)
	}
}

package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/waitcond"
)

// A container's memory limit is the agent's and its commands' together: the soft limit the
// agent sets of it must not sit below what the agent itself holds live at a load the container
// is sized for, or the collector runs back to back (up to half the CPU) and frees nothing. A
// 128 MiB container, a thousand sleeping runs' live heap and stacks (~32 MB) with a margin, and
// 128 MiB allocated: Go's 100% collects a few times.
func TestGCDefaultsDoNotThrashASmallContainer(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestGCLimitProbe$")
	cmd.Env = append(withoutGCEnv(os.Environ()), "PORT_RUNNER_GC_LIMIT_PROBE=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("probe: %v\n%s", err, out)
	}
	line, _, _ := strings.Cut(string(out), "\n")
	n, err := strconv.Atoi(line)
	if err != nil {
		t.Fatalf("probe said %q", out)
	}
	t.Logf("%d collections", n)
	if n > 8 {
		t.Fatalf("%d collections while 128 MiB was allocated over a 36 MiB live heap in a 128 MiB container (soft limit %d MiB), want a few",
			n, gcDefaults(func(string) string { return "" }, 128<<20).limit>>20)
	}
}

// TestGCLimitProbe is TestGCDefaultsDoNotThrashASmallContainer's process: it prints the
// collections the allocation took.
func TestGCLimitProbe(t *testing.T) {
	if os.Getenv("PORT_RUNNER_GC_LIMIT_PROBE") == "" {
		t.Skip("run by TestGCDefaultsDoNotThrashASmallContainer")
	}
	stop := gcDefaults(func(string) string { return "" }, 128<<20).apply()
	defer stop()
	live := make([][]byte, 36)
	for i := range live {
		live[i] = make([]byte, 1<<20)
	}
	runtime.GC()
	cycles := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(cycles)
	before := cycles[0].Value.Uint64()
	var sink []byte
	for range 128 << 20 >> 16 {
		sink = make([]byte, 64<<10)
	}
	metrics.Read(cycles)
	runtime.KeepAlive(live)
	runtime.KeepAlive(sink)
	fmt.Println(cycles[0].Value.Uint64() - before)
}

// The tuner re-arms after every collection: the percent follows the live heap up and back
// down, several times over, in a process of its own (the first 400 alone is set before any
// collection, so it proves nothing about re-arming).
func TestGCTunerFollowsTheLiveHeapUpAndDown(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestGCTunerProbe$")
	cmd.Env = append(withoutGCEnv(os.Environ()), "PORT_RUNNER_GC_TUNER_PROBE=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("probe: %v\n%s", err, out)
	}
}

// TestGCTunerProbe is TestGCTunerFollowsTheLiveHeapUpAndDown's process.
func TestGCTunerProbe(t *testing.T) {
	if os.Getenv("PORT_RUNNER_GC_TUNER_PROBE") == "" {
		t.Skip("run by TestGCTunerFollowsTheLiveHeapUpAndDown")
	}
	stop := gcDefaults(func(string) string { return "" }, 0).apply()
	defer stop()
	percent := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	settles := func(want uint64) {
		waitcond.For(t, fmt.Sprintf("the percent to settle at %d", want), 10*time.Second, func() bool {
			runtime.GC()
			metrics.Read(percent)
			return percent[0].Value.Uint64() == want
		})
	}
	for range 5 {
		live := make([][]byte, 32)
		for i := range live {
			live[i] = make([]byte, 1<<20)
		}
		settles(100)
		runtime.KeepAlive(live)
		live = nil
		settles(maxGCPercent)
	}
	debug.SetGCPercent(100)
}

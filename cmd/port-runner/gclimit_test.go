package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
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


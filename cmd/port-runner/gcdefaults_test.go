package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/waitcond"
)

// The agent tunes the collector only where the environment does not set GOGC, and sets a
// soft memory limit only where it does not set GOMEMLIMIT and a container limits memory.
func TestGCDefaultsOnlyWhereTheEnvironmentSetsNone(t *testing.T) {
	for _, c := range []struct {
		name      string
		env       map[string]string
		memoryMax int64
		want      gcSettings
	}{
		{"nothing set, no container limit", nil, 0, gcSettings{tune: true}},
		{"nothing set, a container limit", nil, 512 << 20, gcSettings{tune: true, limit: 512 << 20 / 10 * 9}},
		{"empty values are unset", map[string]string{"GOGC": "", "GOMEMLIMIT": ""}, 512 << 20, gcSettings{tune: true, limit: 512 << 20 / 10 * 9}},
		{"GOGC set: Go's own behaviour", map[string]string{"GOGC": "100"}, 512 << 20, gcSettings{}},
		{"GOGC=off: no limit added", map[string]string{"GOGC": "off"}, 512 << 20, gcSettings{}},
		{"GOMEMLIMIT set: it is the limit", map[string]string{"GOMEMLIMIT": "100MiB"}, 512 << 20, gcSettings{tune: true}},
		{"both set", map[string]string{"GOGC": "50", "GOMEMLIMIT": "1GiB"}, 512 << 20, gcSettings{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := gcDefaults(func(k string) string { return c.env[k] }, c.memoryMax)
			if got != c.want {
				t.Fatalf("gcDefaults = %+v, want %+v", got, c.want)
			}
		})
	}
}

// A small live heap grows by at least minGrowth between collections, a large one by Go's 100%.
func TestGCPercentFor(t *testing.T) {
	for _, c := range []struct {
		live uint64
		want int
	}{{0, maxGCPercent}, {2 << 20, maxGCPercent}, {4 << 20, 300}, {6 << 20, 200}, {minGrowth, 100}, {100 << 20, 100}} {
		if got := gcPercentFor(c.live); got != c.want {
			t.Errorf("gcPercentFor(%d MiB) = %d, want %d", c.live>>20, got, c.want)
		}
	}
}

// In a real process, whose runtime reads GOGC and GOMEMLIMIT itself: the percent and limit the
// collector runs with once the agent's defaults are applied, with a small live heap and then
// with a large one.
func TestGCDefaultsInAProcess(t *testing.T) {
	none := int64(math.MaxInt64)
	for _, c := range []struct {
		env  []string
		want string
	}{
		{nil, fmt.Sprintf("small %d %d, large 100 %d", maxGCPercent, none, none)},
		{[]string{"GOGC=50"}, fmt.Sprintf("small 50 %d, large 50 %d", none, none)},
		{[]string{"GOMEMLIMIT=1GiB"}, fmt.Sprintf("small %d %d, large 100 %d", maxGCPercent, 1<<30, 1<<30)},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestGCDefaultsProbe$")
		cmd.Env = append(withoutGCEnv(os.Environ()), append(c.env, "PORT_RUNNER_GC_PROBE=1")...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: probe: %v\n%s", c.env, err, out)
		}
		got, _, _ := strings.Cut(string(out), "\n")
		if got != c.want {
			t.Errorf("%v: the collector runs with %q, want %q", c.env, got, c.want)
		}
	}
}

// TestGCDefaultsProbe is TestGCDefaultsInAProcess's process (no container limit: the test
// machine's must not change the figures).
func TestGCDefaultsProbe(t *testing.T) {
	if os.Getenv("PORT_RUNNER_GC_PROBE") == "" {
		t.Skip("run by TestGCDefaultsInAProcess")
	}
	stop := gcDefaults(os.Getenv, 0).apply()
	defer stop()
	sample := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/gomemlimit:bytes"}}
	settled := func(want uint64) string {
		var got uint64
		waitcond.For(t, "the collector's percent to settle", 10*time.Second, func() bool {
			runtime.GC()
			metrics.Read(sample)
			got = sample[0].Value.Uint64()
			return got == want || os.Getenv("GOGC") != ""
		})
		return fmt.Sprintf("%d %d", got, sample[1].Value.Uint64())
	}
	small := settled(maxGCPercent)
	live := make([][]byte, 64) // 64 MiB live: far over minGrowth
	for i := range live {
		live[i] = make([]byte, 1<<20)
	}
	large := settled(100)
	runtime.KeepAlive(live)
	fmt.Printf("small %s, large %s\n", small, large)
	debug.SetGCPercent(100)
}

func withoutGCEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "GOGC=") && !strings.HasPrefix(kv, "GOMEMLIMIT=") {
			out = append(out, kv)
		}
	}
	return out
}

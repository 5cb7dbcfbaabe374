package executor

import (
	"context"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/shim"
)

// BenchmarkShimCost is the per-run cost of the exec shim: Run of /bin/true with no shim,
// under the tiny port-runner-shim, and under the agent's own binary (the fallback, built here
// from ./cmd/port-runner). go-runtime-floor runs the tiny shim with no arguments and no shim
// (it prints its usage and exits): a Go binary's bare start-up, the floor of any Go shim. child-cpu-us/run is the CPU (user+sys) of the run's processes,
// from getrusage(RUSAGE_CHILDREN); agent-cpu-us/run is the benchmark process's own.
//
//	go test -run='^$' -bench BenchmarkShimCost -benchtime 2000x ./executor/
func BenchmarkShimCost(b *testing.B) {
	agentBin := filepath.Join(b.TempDir(), "port-runner")
	if out, err := exec.Command("go", "build", "-o", agentBin, "github.com/port-runner/port-runner/cmd/port-runner").CombinedOutput(); err != nil {
		b.Fatalf("go build ./cmd/port-runner: %v\n%s", err, out)
	}
	for _, c := range []struct {
		name   string
		argv   []string
		prefix []string
	}{
		{"none", []string{"/bin/true"}, nil},
		{"go-runtime-floor", []string{tinyShim}, nil},
		{"tiny", []string{"/bin/true"}, []string{tinyShim}},
		{"agent-binary", []string{"/bin/true"}, []string{agentBin, shim.Command}},
	} {
		b.Run(c.name, func(b *testing.B) {
			spec := Spec{Argv: c.argv, Shim: c.prefix}
			var self0, kids0 syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self0)
			_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids0)
			b.ResetTimer()
			for b.Loop() {
				if res := Run(context.Background(), spec, nil); !res.Success && c.prefix != nil {
					b.Fatalf("run: %+v", res)
				}
			}
			b.StopTimer()
			var self1, kids1 syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self1)
			_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids1)
			n := float64(b.N)
			b.ReportMetric(float64((cpu(kids1)-cpu(kids0)).Microseconds())/n, "child-cpu-us/run")
			b.ReportMetric(float64((cpu(self1)-cpu(self0)).Microseconds())/n, "agent-cpu-us/run")
		})
	}
}

func cpu(r syscall.Rusage) time.Duration {
	return time.Duration(syscall.TimevalToNsec(r.Utime) + syscall.TimevalToNsec(r.Stime))
}

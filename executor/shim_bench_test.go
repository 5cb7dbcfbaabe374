package executor

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/sandbox"
	"github.com/port-runner/port-runner/internal/shim"
)

// BenchmarkShimCost is the per-run cost of the exec shim and of the isolation it applies:
// Run of /bin/true with no shim; under the C shim (what the image ships), the Go one
// (`go install` users) and the agent's own binary (the fallback, built here from
// ./cmd/port-runner); then the C and Go shims with the sandbox (a Landlock ruleset the
// executor builds per run; the Go shim then starts a second stage), with runAs (as root),
// and with both. go-runtime-floor runs the Go shim with no arguments and no shim (it prints
// its usage and exits): a Go binary's bare start-up. Every shimmed run also gets
// oom_score_adj and RLIMIT_CORE. The sandbox's private path is one directory right below /
// (the chart's layout: few rules); sandbox-deep puts it under /dev/shm and /tmp as a plain
// install does. child-cpu-us/run is the CPU (user+sys) of the run's processes, from
// getrusage(RUSAGE_CHILDREN); agent-cpu-us/run is the benchmark process's own (the ruleset's
// build included).
//
//	go test -run='^$' -bench BenchmarkShimCost -benchtime 2000x ./executor/
func BenchmarkShimCost(b *testing.B) {
	agentBin := filepath.Join(b.TempDir(), "port-runner")
	if out, err := exec.Command("go", "build", "-o", agentBin, "github.com/port-runner/port-runner/cmd/port-runner").CombinedOutput(); err != nil {
		b.Fatalf("go build ./cmd/port-runner: %v\n%s", err, out)
	}
	shallow, deep := benchSandbox(b, true), benchSandbox(b, false)
	var uids *sandbox.UIDs
	if os.Getuid() == 0 {
		uids, _ = sandbox.NewUIDs(testRunUIDLo, testRunUIDHi)
	}
	type bcase struct {
		name   string
		argv   []string
		prefix []string
		iso    Isolation
	}
	cases := []bcase{
		{"none", []string{"/bin/true"}, nil, Isolation{}},
		{"go-runtime-floor", []string{tinyShim}, nil, Isolation{}},
		{"go", []string{"/bin/true"}, []string{tinyShim}, Isolation{}},
		{"agent-binary", []string{"/bin/true"}, []string{agentBin, shim.Command}, Isolation{}},
	}
	for _, s := range []struct {
		name   string
		prefix []string
	}{{"c", []string{cShim}}, {"go", []string{tinyShim}}} {
		if s.prefix[0] == "" {
			continue
		}
		if s.name == "c" {
			cases = append(cases, bcase{"c", []string{"/bin/true"}, s.prefix, Isolation{}})
		}
		if shallow != nil {
			cases = append(cases, bcase{s.name + "+sandbox", []string{"/bin/true"}, s.prefix, Isolation{Sandbox: shallow}})
		}
		if deep != nil && s.name == "c" {
			cases = append(cases, bcase{s.name + "+sandbox-deep", []string{"/bin/true"}, s.prefix, Isolation{Sandbox: deep}})
		}
		if uids != nil {
			cases = append(cases, bcase{s.name + "+runas", []string{"/bin/true"}, s.prefix, Isolation{UIDs: uids}})
			if shallow != nil {
				cases = append(cases, bcase{s.name + "+sandbox+runas+limits", []string{"/bin/true"}, s.prefix,
					Isolation{Sandbox: shallow, UIDs: uids, Limits: Limits{Processes: 64, OpenFiles: 1024, CPUTime: time.Minute}}})
			}
		}
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			spec := Spec{Argv: c.argv, Shim: c.prefix, Isolation: c.iso}
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

// benchSandbox is a sandbox whose private paths sit in one directory right below / (shallow)
// or under /dev/shm and /tmp; nil without Landlock.
func benchSandbox(b *testing.B, shallow bool) *sandbox.Sandbox {
	var private []string
	if shallow {
		dir := "/port-runner-bench-" + strconv.Itoa(os.Getpid())
		if err := os.Mkdir(dir, 0o700); err != nil {
			b.Logf("no shallow sandbox: %v", err)
			return nil
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		private = []string{dir}
	} else {
		private = []string{filepath.Join(RunDirRoot(), "port-runner-bench-"+strconv.Itoa(os.Getpid())), b.TempDir()}
	}
	layout, err := sandbox.NewLayout(private)
	if err != nil {
		b.Fatal(err)
	}
	sb, err := sandbox.New(layout)
	if err != nil {
		b.Logf("no sandbox: %v", err)
		return nil
	}
	b.Logf("sandbox (shallow %v): %d rules", shallow, layout.Size())
	return sb
}

func cpu(r syscall.Rusage) time.Duration {
	return time.Duration(syscall.TimevalToNsec(r.Utime) + syscall.TimevalToNsec(r.Stime))
}

package executor

import (
	"strconv"
	"time"

	"github.com/port-runner/port-runner/internal/sandbox"
)

// Isolation confines one run's command (README "Isolation"); the shim applies it between
// fork and exec, so without the shim (outside Linux) only the run directory applies. The
// zero value: the agent's uid, no sandbox, no limit.
type Isolation struct {
	// Sandbox puts the command in a Landlock domain of its own: its run directory, Dir and
	// Write read-write, Read and the sandbox's layout read-only; no signal or abstract socket
	// outside the run. nil: no sandbox.
	Sandbox     *sandbox.Sandbox
	Read, Write []string
	// UIDs gives the run a uid (and gid) of its own for its life (executor.runAs); nil: the
	// agent's.
	UIDs *sandbox.UIDs
	// Cgroups makes the run cgroups of its own for its process and memory limits; nil: none.
	Cgroups *sandbox.Cgroups
	Limits  Limits
	// Runs is where run directories go; nil: a new directory under RunDirRoot per run.
	Runs *RunsDir
}

// confines reports whether the command runs apart from the agent (a sandbox or a uid of its
// own): it then gets a HOME and TMPDIR inside its run directory.
func (i Isolation) confines() bool { return i.Sandbox != nil || i.UIDs != nil }

// Limits bound one run (executor.limits, overridable per action); 0 is no limit. A run that
// hits one is ended as a failure whose label says which (LimitLabel), where the kernel tells.
type Limits struct {
	// Processes the run may have at once: its cgroup's pids.max where the agent has a
	// writable cgroup, else RLIMIT_NPROC under runAs (the uid is the run's alone).
	Processes int
	// OpenFiles per process (RLIMIT_NOFILE).
	OpenFiles int
	// CPUTime per process (RLIMIT_CPU: a process that forks resets the count for its child).
	CPUTime time.Duration
	// RunDirSize bounds the run directory (its HOME and TMPDIR included), checked while it
	// runs, and every file the command writes (RLIMIT_FSIZE).
	RunDirSize int64
	// Memory of the whole run: its memory cgroup, only where the agent has one.
	Memory int64
}

// OOMScoreAdj is every command's oom_score_adj: the kernel's OOM killer picks a command
// before the agent (a command may lower its own, but never below the agent's).
const OOMScoreAdj = 1000

// What LimitLabel names.
const (
	LimitProcesses = "processes"
	LimitMemory    = "memory"
	LimitCPUTime   = "cpu time"
	LimitFileSize  = "file size"
	LimitRunDir    = "run directory"
)

// LimitLabel is the statusLabel of a run that hit a limit: "limit exceeded: processes (64)".
func (l Limits) LimitLabel(which string) string {
	v := ""
	switch which {
	case LimitProcesses:
		v = strconv.Itoa(l.Processes)
	case LimitMemory:
		v = byteSize(l.Memory)
	case LimitCPUTime:
		v = humanDuration(l.CPUTime)
	case LimitFileSize, LimitRunDir:
		v = byteSize(l.RunDirSize)
	}
	return "limit exceeded: " + which + " (" + v + ")"
}

// byteSize is n in the largest binary unit that divides it.
func byteSize(n int64) string {
	for _, u := range []struct {
		s string
		m int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.m && n%u.m == 0 {
			return strconv.FormatInt(n/u.m, 10) + u.s
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

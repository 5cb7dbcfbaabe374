package config

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/port-runner/port-runner/internal/sandbox"
)

// The run isolation's part of the config (README "Isolation"): executor.sandbox, runAs,
// cgroups, limits and an action's sandbox and limits, their types and their checks.

// Limits bound one run (README "Isolation"); 0 is no limit.
type Limits struct {
	Processes  int      `yaml:"processes"`  // at once (a pids cgroup, or RLIMIT_NPROC under runAs)
	OpenFiles  int      `yaml:"openFiles"`  // per process (RLIMIT_NOFILE)
	CPUTime    Duration `yaml:"cpuTime"`    // per process (RLIMIT_CPU)
	RunDirSize ByteSize `yaml:"runDirSize"` // the run directory, and any one file (RLIMIT_FSIZE)
	Memory     ByteSize `yaml:"memory"`     // the whole run (a memory cgroup, where the agent has one)
}

// Over is l with every limit o sets in its place.
func (l Limits) Over(o Limits) Limits {
	if o.Processes != 0 {
		l.Processes = o.Processes
	}
	if o.OpenFiles != 0 {
		l.OpenFiles = o.OpenFiles
	}
	if o.CPUTime != 0 {
		l.CPUTime = o.CPUTime
	}
	if o.RunDirSize != 0 {
		l.RunDirSize = o.RunDirSize
	}
	if o.Memory != 0 {
		l.Memory = o.Memory
	}
	return l
}

// Sandbox modes (executor.sandbox).
const (
	SandboxAuto     = "auto"
	SandboxRequired = "required"
	SandboxOff      = "off"
)

// DefaultProcesses is executor.limits.processes unless set.
const DefaultProcesses = 1024

// ActionSandbox is an action's `sandbox`: "off", or what its command may read and write
// beside the defaults (README "Isolation").
type ActionSandbox struct {
	Off   bool     `yaml:"-"`
	Read  []string `yaml:"read"`  // more paths it may read (and execute)
	Write []string `yaml:"write"` // more paths it may write
}

// UnmarshalYAML takes `sandbox: off` or `sandbox: {read: [...], write: [...]}`.
func (s *ActionSandbox) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return nil
		}
		if n.Value != SandboxOff {
			return fmt.Errorf("line %d: want off or {read: [...], write: [...]}, got %q", n.Line, n.Value)
		}
		*s = ActionSandbox{Off: true}
		return nil
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			var into *[]string
			switch k.Value {
			case "read":
				into = &s.Read
			case "write":
				into = &s.Write
			default:
				return fmt.Errorf("line %d: unknown key %q (want read or write)", k.Line, k.Value)
			}
			if err := n.Content[i+1].Decode(into); err != nil {
				return fmt.Errorf("line %d: %s: want a list of paths", k.Line, k.Value)
			}
		}
		return nil
	}
	return fmt.Errorf("line %d: want off or {read: [...], write: [...]}", n.Line)
}

// isolationDefaults fills executor.sandbox and executor.limits.processes when unset.
func (e *Executor) isolationDefaults() {
	if e.Sandbox == "" {
		e.Sandbox = SandboxAuto
	}
	if e.Limits.Processes == 0 {
		e.Limits.Processes = DefaultProcesses
	}
}

// UIDRange is executor.runAs read: "LO-HI" or one uid.
func UIDRange(s string) (lo, hi int, err error) {
	a, b, isRange := strings.Cut(strings.TrimSpace(s), "-")
	if lo, err = strconv.Atoi(strings.TrimSpace(a)); err == nil {
		hi = lo
		if isRange {
			hi, err = strconv.Atoi(strings.TrimSpace(b))
		}
	}
	if err != nil || lo < 1 || hi < lo || hi > 1<<31-2 {
		return 0, 0, fmt.Errorf("want a range of non-root uids like 20000-20999, got %q", s)
	}
	return lo, hi, nil
}

// validateIsolation checks executor's sandbox, runAs, runsDir, private and limits. What
// needs the kernel (Landlock, capabilities, cgroups) the agent checks at start, where it
// runs: `validate` says what it finds there too.
func validateIsolation(e Executor, add func(error)) {
	if !oneOf(e.Sandbox, SandboxAuto, SandboxRequired, SandboxOff) {
		add(problem("executor.sandbox", "must be auto, required or off, got %q", e.Sandbox))
	}
	if e.RunAs != "" {
		if lo, hi, err := UIDRange(e.RunAs); err != nil {
			add(problem("executor.runAs", "%v", err))
		} else if own := sandbox.OwnIDIn(lo, hi); own >= 0 {
			add(problem("executor.runAs", "%d-%d holds %d, the agent's own uid or gid: a run of it would reach the agent and every other run", lo, hi, own))
		} else if n := hi - lo + 1; e.MaxConcurrent > n {
			// Each running run holds a uid of its own: a run past the range's size would fail
			// to start ("all uids in use") though the pool had room for it.
			add(problem("executor.runAs", "%d-%d holds %d uids, fewer than executor.maxConcurrent (%d) runs at once", lo, hi, n, e.MaxConcurrent))
		}
	}
	if e.RunsDir != "" && !filepath.IsAbs(e.RunsDir) {
		add(problem("executor.runsDir", "must be an absolute path, got %q", e.RunsDir))
	}
	for i, p := range e.Private {
		if !filepath.IsAbs(p) {
			add(problem(fmt.Sprintf("executor.private[%d]", i), "must be an absolute path, got %q", p))
		}
	}
	validateLimits("executor.limits", e.Limits, add)
	if e.Limits.Memory > 0 && !e.Cgroups {
		add(problem("executor.limits.memory", "needs executor.cgroups: a run's memory is bounded by its memory cgroup"))
	}
}

func validateLimits(key string, l Limits, add func(error)) {
	for name, v := range map[string]int64{"processes": int64(l.Processes), "openFiles": int64(l.OpenFiles),
		"cpuTime": int64(l.CPUTime), "runDirSize": int64(l.RunDirSize), "memory": int64(l.Memory)} {
		if v < 0 {
			add(problem(key+"."+name, "must not be negative"))
		}
	}
	if c := l.CPUTime.D(); c > 0 && c < time.Second {
		add(problem(key+".cpuTime", "the kernel counts whole seconds: at least 1s, got %s", c))
	}
}

func validateActionSandbox(key string, s ActionSandbox, add func(error)) {
	for what, paths := range map[string][]string{"read": s.Read, "write": s.Write} {
		for i, p := range paths {
			if !filepath.IsAbs(p) {
				add(problem(fmt.Sprintf("%s.sandbox.%s[%d]", key, what, i), "must be an absolute path, got %q", p))
			}
		}
	}
}

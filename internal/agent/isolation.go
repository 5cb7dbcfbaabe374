package agent

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"go.uber.org/zap"

	"github.com/port-runner/port-runner/executor"
	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/sandbox"
	"github.com/port-runner/port-runner/metrics"
)

// isolation is how this agent confines its runs' commands (README "Isolation"): what the
// config asks for, as far as the kernel, the agent's capabilities and the exec shim allow.
// It is settled once, at New: `validate`, the start-up log, /status and the metric
// port_runner_isolation_protection all say the same.
type isolation struct {
	base     executor.Isolation // Sandbox, UIDs, Cgroups; Runs and per-action parts are added per run
	limits   config.Limits
	prot     sandbox.Protections
	runsRoot string
	mode     string // executor.sandbox
	shim     string // which shim runs commands
	actions  map[string]executor.Isolation
}

// newIsolation settles the isolation from the config, or fails where the config asks for
// what this machine cannot give (executor.sandbox: required, executor.runAs, executor.cgroups):
// the agent then refuses to start.
func newIsolation(cfg *config.Config, deps Deps) (*isolation, error) {
	e := cfg.Executor
	iso := &isolation{limits: e.Limits, mode: e.Sandbox, shim: deps.ShimKind,
		prot: sandbox.Protections{InForce: map[string]bool{}, LandlockABI: sandbox.LandlockABI()}}
	iso.runsRoot = e.RunsDir
	if iso.runsRoot == "" {
		iso.runsRoot = executor.DefaultRunsRoot()
	}
	if len(deps.Shim) == 0 {
		// Without the shim nothing is applied between fork and exec (not Linux).
		iso.note("no exec shim on this platform: commands run in a plain process group as the agent's uid")
		if e.Sandbox == config.SandboxRequired || e.RunAs != "" || e.Cgroups {
			return nil, errors.New("executor.sandbox: required, executor.runAs and executor.cgroups need the exec shim (Linux)")
		}
		return iso, nil
	}
	for _, step := range []func(*config.Config, Deps) error{iso.settleSandbox, iso.settleRunAs, iso.settleCgroups} {
		if err := step(cfg, deps); err != nil {
			return nil, err
		}
	}
	if os.Geteuid() == 0 && !iso.prot.Has(sandbox.RunUID) {
		iso.note(rootNote)
	}
	if iso.limits.Processes > 0 && !iso.prot.Has(sandbox.RunUID) && !iso.prot.Has(sandbox.CgroupPids) {
		iso.note(fmt.Sprintf("executor.limits.processes (%d) is not enforced: it needs executor.runAs or executor.cgroups", iso.limits.Processes))
	}
	iso.actions = map[string]executor.Isolation{}
	for _, name := range cfg.ActionNames() {
		x, err := iso.forAction(name, cfg.Actions[name])
		if err != nil {
			return nil, err
		}
		iso.actions[name] = x
	}
	return iso, nil
}

// rootNote is the isolation's note for an agent running as root without executor.runAs:
// its commands keep root's capabilities, which no Landlock rule holds back (README "Isolation").
const rootNote = "commands run as root (the agent's uid; no executor.runAs): the sandbox does not hold root's capabilities back (kernel modules, raw I/O, the kernel's memory); set executor.runAs"

// noSharedMemoryNote is the isolation's note for a sandbox that can give no action /dev/shm
// (sandbox.write): a private path (the runs root, by default) lies in it (README
// "Isolation").
const noSharedMemoryNote = "no action can be given /dev/shm (sandbox.write; POSIX shared memory: Python's multiprocessing, Ansible): a private path, the run directories by default, is in it; set RUNTIME_DIRECTORY or executor.runsDir elsewhere"

// settleSandbox builds the Landlock layout: everything readable but the agent's config, its
// credential files, the run directories and executor.private.
func (iso *isolation) settleSandbox(cfg *config.Config, deps Deps) error {
	if iso.mode == config.SandboxOff {
		iso.note("executor.sandbox: off")
		return nil
	}
	private := append([]string{iso.runsRoot, deps.ConfigPath, cfg.Port.ClientSecretFile, cfg.Kafka.SASL.PasswordFile}, cfg.Executor.Private...)
	layout, err := sandbox.NewLayout(private)
	var sb *sandbox.Sandbox
	if err == nil {
		sb, err = sandbox.New(layout)
	}
	if err == nil {
		for _, p := range sb.Protections() {
			iso.prot.InForce[p] = true
		}
		iso.base.Sandbox = sb
		if layout.Overlaps(sandbox.SharedMemoryDir) {
			iso.note(noSharedMemoryNote)
		}
	}
	if iso.mode == config.SandboxRequired {
		if err != nil {
			return fmt.Errorf("executor.sandbox: required, but %w", err)
		}
		if missing := missingOf(iso.prot, sandbox.Landlocked); len(missing) > 0 {
			return fmt.Errorf("executor.sandbox: required, but this kernel (Landlock ABI %d) cannot enforce %s: it needs Landlock ABI 6 (Linux 6.12)",
				iso.prot.LandlockABI, strings.Join(missing, ", "))
		}
	}
	if err != nil {
		iso.note("no sandbox: " + err.Error())
	}
	return nil
}

// settleRunAs takes executor.runAs's uid range, which needs CAP_SETUID and CAP_SETGID (and
// the others sandbox.RunAsMissing names) kept across the shim's exec.
func (iso *isolation) settleRunAs(cfg *config.Config, _ Deps) error {
	if cfg.Executor.RunAs == "" {
		return nil
	}
	lo, hi, err := config.UIDRange(cfg.Executor.RunAs)
	if err != nil {
		return fmt.Errorf("executor.runAs: %w", err)
	}
	if missing := sandbox.RunAsMissing(); len(missing) > 0 {
		return fmt.Errorf("executor.runAs needs the capabilities %s, which this agent lacks (README \"Isolation\": run it as root with only those, or give them as ambient capabilities)",
			strings.Join(missing, ", "))
	}
	if !sandbox.UIDsMapped(lo, hi) {
		return fmt.Errorf("executor.runAs: %d-%d is not mapped in this user namespace (/proc/self/uid_map)", lo, hi)
	}
	uids, err := sandbox.NewUIDs(lo, hi)
	if err != nil {
		return err
	}
	iso.base.UIDs = uids
	iso.prot.InForce[sandbox.RunUID] = true
	return nil
}

// settleCgroups finds where run cgroups go, when executor.cgroups asks for them.
func (iso *isolation) settleCgroups(cfg *config.Config, _ Deps) error {
	if !cfg.Executor.Cgroups {
		return nil
	}
	cg, err := sandbox.DetectCgroups()
	if err != nil {
		return fmt.Errorf("executor.cgroups: %w", err)
	}
	for _, p := range cg.Protections() {
		iso.prot.InForce[p] = true
	}
	if !iso.prot.Has(sandbox.CgroupMemory) {
		for _, name := range cfg.ActionNames() {
			if iso.limits.Over(cfg.Actions[name].Limits).Memory > 0 {
				return fmt.Errorf("executor.cgroups: no memory cgroup here (%s) for actions.%s's memory limit", cg, name)
			}
		}
	}
	iso.base.Cgroups = cg
	iso.note("run cgroups: " + cg.String())
	return nil
}

func (iso *isolation) note(s string) { iso.prot.Notes = append(iso.prot.Notes, s) }

func missingOf(p sandbox.Protections, names []string) []string {
	var out []string
	for _, n := range names {
		if !p.InForce[n] {
			out = append(out, n)
		}
	}
	return out
}

// forAction is the isolation of one action's runs: its sandbox additions (or none, with
// sandbox: off) and its limits over the executor's. Its paths must stay clear of what the
// sandbox keeps private.
func (iso *isolation) forAction(name string, ac config.Action) (executor.Isolation, error) {
	x := iso.base
	l := iso.limits.Over(ac.Limits)
	x.Limits = executor.Limits{Processes: l.Processes, OpenFiles: l.OpenFiles, CPUTime: l.CPUTime.D(),
		RunDirSize: int64(l.RunDirSize), Memory: int64(l.Memory)}
	if ac.Sandbox.Off {
		if x.Sandbox != nil {
			iso.note("actions." + name + ".sandbox: off (its commands run without the sandbox)")
		}
		x.Sandbox = nil
		return x, nil
	}
	if x.Sandbox == nil {
		return x, nil
	}
	layout := x.Sandbox.Layout()
	for what, paths := range map[string][]string{"read": ac.Sandbox.Read, "write": ac.Sandbox.Write, "workdir": {ac.Workdir}} {
		for _, p := range paths {
			if p != "" && layout.Overlaps(p) {
				return x, fmt.Errorf("actions.%s.sandbox: %s %s reaches what the sandbox keeps from every command (the agent's config, credentials or run directories)", name, what, p)
			}
		}
	}
	x.Read, x.Write = ac.Sandbox.Read, ac.Sandbox.Write
	return x, nil
}

// logStart says at start which protections are in force, and why others are not.
func (iso *isolation) logStart(log *zap.Logger) {
	fields := []zap.Field{zap.String("sandbox", iso.mode), zap.Strings("protections", iso.prot.List()),
		zap.Strings("missing", iso.prot.Missing()), zap.Int("landlockABI", iso.prot.LandlockABI), zap.String("shim", iso.shim)}
	if len(iso.prot.Notes) > 0 {
		fields = append(fields, zap.Strings("notes", iso.prot.Notes))
	}
	log.Info("run isolation", fields...)
}

// status is the isolation as /status and the metrics show it.
func (iso *isolation) status() metrics.Isolation {
	return metrics.Isolation{Sandbox: iso.mode, Protections: iso.prot.List(), Missing: iso.prot.Missing(),
		LandlockABI: iso.prot.LandlockABI, Notes: iso.prot.Notes, Shim: iso.shim}
}

// Summary is the isolation in one line, for `validate`.
func (iso *isolation) summary() string {
	s := "run isolation (sandbox " + iso.mode + ", shim " + iso.shim + "): " + iso.prot.String()
	for _, n := range iso.prot.Notes {
		s += "\n  " + n
	}
	return s
}

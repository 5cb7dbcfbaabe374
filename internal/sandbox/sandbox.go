// Package sandbox is what the kernel offers to keep a run's command from the agent and from
// other runs (README "Isolation"): a Landlock ruleset per run, built here with go-landlock
// and applied by the exec shim between fork and exec; the capabilities a uid per run needs;
// per-run cgroups where one is writable. Each protection is detected, never assumed, and
// [Protections] says which are in force.
package sandbox

import (
	"strconv"
	"strings"
)

// Protection names, as the start-up log, validate, /status and the metric
// port_runner_isolation_protection show them.
const (
	Filesystem      = "filesystem"       // Landlock: the run's files only, never the agent's or other runs'
	Ptrace          = "ptrace"           // Landlock: no other process's memory or environ (ABI 1)
	Signals         = "signals"          // Landlock: no signal to a process outside the run (ABI 6)
	AbstractSockets = "abstract_sockets" // Landlock: no abstract unix socket outside the run (ABI 6)
	RunUID          = "run_uid"          // executor.runAs: a uid of its own per run
	CgroupPids      = "cgroup_pids"      // a per-run pids cgroup: the process limit, detected when hit
	CgroupMemory    = "cgroup_memory"    // a per-run memory cgroup: the memory limit
)

// All is every protection, in the order they are shown.
var All = []string{Filesystem, Ptrace, Signals, AbstractSockets, RunUID, CgroupPids, CgroupMemory}

// Landlocked are the protections executor.sandbox: required insists on.
var Landlocked = []string{Filesystem, Ptrace, Signals, AbstractSockets}

// Protections says which protections are in force; Notes say why one is not, or how.
type Protections struct {
	InForce map[string]bool
	Notes   []string
	// LandlockABI is the kernel's Landlock ABI version (0: none).
	LandlockABI int
}

// Has reports whether every one of names is in force.
func (p Protections) Has(names ...string) bool {
	for _, n := range names {
		if !p.InForce[n] {
			return false
		}
	}
	return true
}

// List is the protections in force, in All's order.
func (p Protections) List() []string {
	var out []string
	for _, n := range All {
		if p.InForce[n] {
			out = append(out, n)
		}
	}
	return out
}

// Missing is the protections not in force, in All's order.
func (p Protections) Missing() []string {
	var out []string
	for _, n := range All {
		if !p.InForce[n] {
			out = append(out, n)
		}
	}
	return out
}

// String is one line: "filesystem, ptrace, signals, abstract_sockets (Landlock ABI 7); not: run_uid".
func (p Protections) String() string {
	in, out := p.List(), p.Missing()
	s := "none"
	if len(in) > 0 {
		s = strings.Join(in, ", ")
	}
	if p.LandlockABI > 0 {
		s += " (Landlock ABI " + strconv.Itoa(p.LandlockABI) + ")"
	}
	if len(out) > 0 {
		s += "; not in force: " + strings.Join(out, ", ")
	}
	return s
}

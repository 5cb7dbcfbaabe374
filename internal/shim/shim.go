// Package shim is the exec shim every command runs under on Linux: port-runner-shim beside
// the agent (the C one the image ships, cmd/port-runner-shim/c, or the Go one of
// cmd/port-runner-shim for `go install` users), or, when that is missing, the agent's own
// binary under the hidden subcommand [Command]. It imports nothing but syscall, so the Go
// shim starts with the Go runtime's own start-up and no package inits.
//
// The protocol with the executor: the shim is started as "SHIM [OPTION...] -- PATH ARGV0
// [ARG...]" with one end of a Unix socket pair as fd [ControlFD] (and, with a sandbox, the
// Landlock ruleset as fd [RulesetFD]). The executor writes [Terminate] or [Kill] to it; end of
// file means the agent died. If the command cannot start, the shim writes why to the socket
// and exits 127. Otherwise it exits as the command did: the same code, or by the same
// signal. The options ([Options]) confine the command between fork and exec; the shim itself
// stays outside, so it can always end the command's tree. "SHIM --version" names the shim.
package shim

// Command is the hidden subcommand under which the agent's binary serves as the shim.
const Command = "__port-runner-exec-shim"

// Binary is the tiny shim's file name; the agent looks for it next to its own executable.
const Binary = "port-runner-shim"

// ControlFD is the shim's end of the control socket (the executor's ExtraFiles[0]).
const ControlFD = 3

// RulesetFD is the Landlock ruleset the agent built for the run (the executor's
// ExtraFiles[1]), when the run is sandboxed.
const RulesetFD = 4

// Control bytes the executor sends.
const (
	Terminate byte = 'T' // SIGTERM to the command's process group (timeout, cancel)
	Kill      byte = 'K' // SIGKILL to the command's process group (after the grace)
)

// deathGraceNs is how long, after the agent died, the command's group gets between SIGTERM
// and SIGKILL (nanoseconds: the time package is not imported).
const deathGraceNs = 5e9

// VersionGo is what the Go shim answers to --version (the C one: "port-runner-shim (C)").
const VersionGo = "port-runner-shim (Go)"

// Package shim is the exec shim every command runs under on Linux: port-runner-shim beside
// the agent (the C one the image ships, cmd/port-runner-shim/c, or the Go one of
// cmd/port-runner-shim for `go install` users), or, when that is missing, the agent's own
// binary under the hidden subcommand [Command]. It imports nothing but syscall, so the Go
// shim starts with the Go runtime's own start-up and no package inits.
//
// The protocol with the executor: the shim is started as "SHIM [OPTION...] -- PATH ARGV0
// [ARG...]" with one end of a Unix socket pair as fd [ControlFD] (and, with a sandbox, the
// Landlock ruleset as fd [RulesetFD]). The executor writes [Terminate], [Kill] or [Renew] to
// it; end of file means the agent died (SIGTERM to the command's group, SIGKILL 5 s later).
// With a fence ([FenceFlag] MS), no byte for MS milliseconds of CLOCK_BOOTTIME kills the
// command's tree: the agent renews only while it holds the run's lease (README "Delivery").
// If the command cannot start, the shim writes why to the socket and exits 127. Otherwise it
// exits as the command did: the same code, or by the same signal. The options ([Options]) confine the command between fork and exec; the shim itself
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

// FenceFlag is the option giving the fence in milliseconds: "--fence MS".
const FenceFlag = "--fence"

// Control bytes the executor sends. Every byte, whatever it is, renews the fence.
const (
	Terminate byte = 'T' // SIGTERM to the command's process group (timeout, cancel)
	Kill      byte = 'K' // SIGKILL to the command's process group (after the grace)
	Renew     byte = 'R' // the lease still holds: the fence starts again
)

// NoteProcesses is what the shim writes to the control socket after its command ended at
// its process limit (RLIMIT_NPROC of a uid of its own, which refuses a fork silently),
// before it exits like the command. Notes start with a NUL byte, which no start error has.
const NoteProcesses = "\x00limit processes"

// deathGraceNs is how long, after the agent died, the command's group gets between SIGTERM
// and SIGKILL (nanoseconds: the time package is not imported).
const deathGraceNs = 5e9

// VersionGo is what the Go shim answers to --version (the C one: "port-runner-shim (C)").
const VersionGo = "port-runner-shim (Go)"

// Package shim is the exec shim every command runs under on Linux: port-runner-shim beside
// the agent (the C one the image ships, cmd/port-runner-shim/c, or the Go one of
// cmd/port-runner-shim for `go install` users), or, when that is missing, the agent's own
// binary under the hidden subcommand [Command]. It imports nothing but syscall, so the Go
// shim starts with the Go runtime's own start-up and no package inits.
//
// The protocol with the executor (written out for other implementations of the shim in
// /work/notes/shim-protocol.md, which must say the same):
//
//   - argv: "SHIM [OPTION...] -- PATH ARGV0 [ARG...]". PATH is the resolved command, ARGV0
//     and the ARGs its argv. The command's environment is the shim's. The options
//     ([Options]: --fence MS, --cgroup, --oom, --rlimit, --ids, --landlock) confine the
//     command between fork and exec; the shim itself stays outside, so it can always end
//     the command's tree. "SHIM --version" names the shim.
//   - fd [ControlFD] (3) is the shim's end of a SOCK_STREAM Unix socket pair; the command
//     must not inherit it (close-on-exec). With a sandbox, fd [RulesetFD] (4) is the
//     Landlock ruleset.
//   - The executor writes single bytes to it: [Terminate] ('T': SIGTERM to the command's
//     process group), [Kill] ('K': SIGKILL to the group and its leader), [Renew] ('R': the
//     agent still holds the run's lease; nothing else). Unknown bytes are ignored. Only
//     'R' renews the fence: a 'T' or 'K' does not.
//   - The fence (--fence MS, MS > 0): when no 'R' has arrived for MS milliseconds (from the
//     start, then from the last 'R'), the shim kills the command's tree at once: SIGKILL to
//     the group and its leader, then every descendant (as when the command ends), and exits
//     like the command (killed by SIGKILL). Time is CLOCK_BOOTTIME, so a suspended machine's
//     pause counts; the check may fire up to MS/8 late, never early. The agent renews only
//     while it holds the run's lease, so a frozen or cut-off agent's commands die on their
//     own (README "Delivery"). Without --fence there is no fence.
//   - End of file on the socket: the agent died. SIGTERM to the group, then SIGKILL after
//     5 seconds, or at the fence's deadline if that comes first.
//   - If the command cannot start, the shim writes why to the socket and exits 127.
//     Otherwise it exits as the command did: the same code, or by the same signal.
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

// Control bytes the executor sends. Only Renew renews the fence.
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

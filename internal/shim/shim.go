// Package shim is the exec shim every command runs under on Linux: the small
// cmd/port-runner-shim binary, or, when that is missing, the agent's own binary under the
// hidden subcommand [Command]. It imports nothing but syscall, so the tiny binary starts with
// the Go runtime's own start-up and no package inits.
//
// The protocol with the executor (written out for other implementations of the shim in
// /work/notes/shim-protocol.md, which must say the same):
//
//   - argv: "SHIM [--fence MS] -- PATH ARGV0 [ARG...]". PATH is the resolved command, ARGV0
//     and the ARGs its argv. The command's environment is the shim's.
//   - fd [ControlFD] (3) is the shim's end of a SOCK_STREAM Unix socket pair; the command
//     must not inherit it (close-on-exec).
//   - The executor writes single bytes to it: [Terminate] ('T': SIGTERM to the command's
//     process group), [Kill] ('K': SIGKILL to the group and its leader), [Renew] ('R': the
//     agent still holds the run's lease; nothing else). Unknown bytes are ignored. Only
//     'R' renews the fence: a 'T' or 'K' does not.
//   - The fence (--fence MS, MS > 0): when no byte has arrived for MS milliseconds (from the
//     start, then from the last byte), the shim kills the command's tree at once: SIGKILL to
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

// FenceFlag is the option giving the fence in milliseconds: "--fence MS".
const FenceFlag = "--fence"

// Control bytes the executor sends.
const (
	Terminate byte = 'T' // SIGTERM to the command's process group (timeout, cancel)
	Kill      byte = 'K' // SIGKILL to the command's process group (after the grace)
	Renew     byte = 'R' // the lease still holds: the fence starts again
)

// deathGraceNs is how long, after the agent died, the command's group gets between SIGTERM
// and SIGKILL (nanoseconds: the time package is not imported).
const deathGraceNs = 5e9

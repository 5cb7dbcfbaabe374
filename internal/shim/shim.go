// Package shim is the exec shim every command runs under on Linux: port-runner-shim beside
// the agent (the C one the image ships, cmd/port-runner-shim/c, or the Go one of
// cmd/port-runner-shim for `go install` users), or, when that is missing, the agent's own
// binary under the hidden subcommand [Command]. It imports nothing but syscall, so the Go
// shim starts with the Go runtime's own start-up and no package inits.
//
// The protocol with the executor (the C shim, cmd/port-runner-shim/c/shim.c, implements the
// same; a change here is a change there, and both shims' tests run it):
//
//   - argv: "SHIM [OPTION...] -- PATH ARGV0 [ARG...]". PATH is the resolved command, ARGV0
//     and the ARGs its argv. The command's environment is the shim's. The options
//     ([Options]: --fence MS, --renewals FD, --cgroup, --oom, --rlimit, --ids, --landlock) confine the
//     command between fork and exec; the shim itself stays outside, so it can always end
//     the command's tree. "SHIM --version" names the shim and its [Protocol].
//   - fd [ControlFD] (3) is the shim's end of a SOCK_STREAM Unix socket pair; the command
//     must not inherit it (close-on-exec). With a sandbox, fd [RulesetFD] (4) is the
//     Landlock ruleset.
//   - The executor writes single bytes to it: [Terminate] ('T': SIGTERM to the command's
//     process group), [Kill] ('K': SIGKILL to the group and its leader), [Renew] ('R': the
//     agent still holds the run's lease; nothing else), and one message of several bytes,
//     [Lasting] ('L', decimal digits N, ';': the agent holds the run's lease for N more
//     milliseconds whatever becomes of it). Unknown bytes are ignored, and so is an 'L'
//     message that another byte breaks (that byte is then read as itself). Only 'R' and
//     'L' renew the fence: a 'T' or 'K' does not.
//   - The fence (--fence MS, MS > 0): when the deadline passes (MS milliseconds after the
//     start, then after the last 'R', or N after the last 'L' message), the shim kills the
//     command's tree at once: SIGKILL to the group and its leader, then every descendant
//     (as when the command ends), and exits like the command (killed by SIGKILL). Each
//     renewal sets the deadline anew, earlier or later. Time is CLOCK_BOOTTIME, so a
//     suspended machine's pause counts; the check may fire up to MS/8 late, never early.
//     The agent renews only while it holds the run's lease, so a frozen or cut-off agent's
//     commands die on their own, and a drained agent's ones at its lease's end whatever
//     happens to it meanwhile (README "Delivery"). Without --fence there is no fence.
//   - --renewals FD (4, or 5 after a ruleset): the read end of a pipe on which the executor
//     writes its 'R' renewals instead of the socket. The shim does not wait on it: it reads
//     it when it looks at the fence anyway (at least every MS/8), so a renewal wakes nobody.
//     An 'R' read there renews the fence to MS after the shim's previous look (before which
//     it cannot have been written): never later than MS after the renewal, at most MS/8
//     earlier; it never moves the deadline earlier. Other bytes there are ignored.
//   - --gate 3 ([GateFlag]): the command starts only once the executor writes [Go] ('G') on
//     the control socket. The shim does what it can before (the C shim: its fork and the
//     command's confinement, up to the exec; the Go shim: its own start-up) and then waits
//     for that one byte, reading nothing past it. End of file (the agent died), or any other
//     byte first: the command never starts; the shim writes why to the socket and exits 127.
//     The fence's time starts with the command. So the agent readies a run while its start
//     mark is on its way and still never starts a command before that is durable (README
//     "Delivery").
//   - End of file on the socket: the agent died. SIGTERM to the group, then SIGKILL after
//     5 seconds, or at the fence's deadline if that comes first.
//   - If the command cannot start, the shim writes why to the socket and exits 127.
//     Otherwise it exits as the command did: the same code, or by the same signal.
package shim

// Command is the hidden subcommand under which the agent's binary serves as the shim.
const Command = "__port-runner-exec-shim"

// Binary is the tiny shim's file name; the agent looks for it next to its own executable.
const Binary = "port-runner-shim"

// ControlFD is the shim's end of the control socket (the first fd the executor passes past
// stderr).
const ControlFD = 3

// RulesetFD is the Landlock ruleset the agent built for the run (the next fd the executor
// passes), when the run is sandboxed.
const RulesetFD = 4

// FenceFlag is the option giving the fence in milliseconds: "--fence MS".
const FenceFlag = "--fence"

// RenewalsFlag is the option naming the renewals pipe's fd: "--renewals FD".
const RenewalsFlag = "--renewals"

// GateFlag is the option that holds the command until the executor says go: "--gate 3" (the
// control socket's fd, the only value).
const GateFlag = "--gate"

const gateValue = "3"

// NotStarted is what a gated shim (GateFlag) writes to the control socket when it exits
// without starting the command: the executor never said go.
const NotStarted = "not started: no go from the agent"

// Control bytes the executor sends. Only Renew and Lasting renew the fence.
const (
	Go        byte = 'G' // the command may start (GateFlag); the first byte, and only then
	Terminate byte = 'T' // SIGTERM to the command's process group (timeout, cancel)
	Kill      byte = 'K' // SIGKILL to the command's process group (after the grace)
	Renew     byte = 'R' // the lease still holds: the fence starts again
	// Lasting begins the message "L<milliseconds>;" (LastingMessage): the lease holds that
	// long whatever becomes of the agent, and the fence's deadline is then.
	Lasting    byte = 'L'
	lastingEnd byte = ';'
)

// NoteProcesses is what the shim writes to the control socket after its command ended at
// its process limit (RLIMIT_NPROC of a uid of its own, which refuses a fork silently),
// before it exits like the command. Notes start with a NUL byte, which no start error has.
const NoteProcesses = "\x00limit processes"

// deathGraceNs is how long, after the agent died, the command's group gets between SIGTERM
// and SIGKILL (nanoseconds: the time package is not imported).
const deathGraceNs = 5e9

// Protocol names the protocol above; both shims' --version ends with it. The executor runs
// the port-runner-shim beside the agent only if it speaks this one: a shim of an older
// release would refuse the options of this one's (--renewals), and every fenced run with it.
// A change of the protocol is a new number, here and in the C shim.
const Protocol = "protocol 3"

// VersionGo is what the Go shim answers to --version (the C one: "port-runner-shim (C)
// protocol N").
const VersionGo = "port-runner-shim (Go) " + Protocol

// LastingMessage is the control message saying the lease holds for ms more milliseconds
// whatever becomes of the agent (Lasting).
func LastingMessage(ms int64) []byte {
	return append(append([]byte{Lasting}, itoa64(max(ms, 0))...), lastingEnd)
}

// maxLastingMs bounds an 'L' message's milliseconds (a year): the sum never overflows.
const maxLastingMs = 365 * 24 * 3600 * 1000

// lastingReader reads 'L' messages out of the control bytes: feed says, for each byte,
// whether it belonged to one (and is used up), and ms, when one ended with it, its figure.
type lastingReader struct{ ms int64 } // the digits so far; -1: no message under way

func newLastingReader() lastingReader { return lastingReader{ms: -1} }

func (r *lastingReader) feed(b byte) (used bool, ms int64, done bool) {
	if r.ms >= 0 {
		switch {
		case b >= '0' && b <= '9':
			r.ms = min(r.ms*10+int64(b-'0'), maxLastingMs)
			return true, 0, false
		case b == lastingEnd:
			ms, r.ms = r.ms, -1
			return true, ms, true
		}
		r.ms = -1 // a broken message: ignored, and b is read as itself
	}
	if b == Lasting {
		r.ms = 0
		return true, 0, false
	}
	return false, 0, false
}

package executor

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"github.com/port-runner/port-runner/internal/shim"
	"golang.org/x/sys/unix"
)

// ShimFor is the exec shim's command prefix (Spec.Shim) for an agent whose binary is exe,
// and which shim that is: port-runner-shim beside exe (ShimC or ShimGo, by its --version), or
// else exe itself under the hidden shim subcommand (ShimAgentBinary), which gives the same
// guarantees at the cost of the agent binary's start-up per run; then err says why.
func ShimFor(exe string) (prefix []string, kind string, err error) {
	fallback := []string{exe, shim.Command}
	tiny := filepath.Join(filepath.Dir(exe), shim.Binary)
	if err := checkExecutable(tiny); err != nil {
		return fallback, ShimAgentBinary, fmt.Errorf("%s: %w", tiny, err)
	}
	// One left from another release would refuse this agent's options, failing every run.
	out, err := exec.Command(tiny, "--version").Output()
	if version := strings.TrimSpace(string(out)); err != nil || !strings.HasSuffix(version, shim.Protocol) {
		if len(version) > 80 {
			version = version[:80] + "..."
		}
		if err != nil {
			version += " (" + err.Error() + ")"
		}
		return fallback, ShimAgentBinary, fmt.Errorf("%s is from another release of port-runner (--version: %q; this agent needs %q)", tiny, version, shim.Protocol)
	}
	kind = ShimUnknown
	switch {
	case strings.Contains(string(out), "(C)"):
		kind = ShimC
	case strings.Contains(string(out), "(Go)"):
		kind = ShimGo
	}
	return []string{tiny}, kind, nil
}

// startShimmed starts the command under the shim: "SHIM... [OPTION...] -- PATH ARGV..."
// (the options: the run's confinement and its fence, Spec.Fence),
// with the shim's end of a control socket as its fd 3 and, with a fence, the read end of
// the pipe its renewals go to (see internal/shim).
func startShimmed(spec Spec, prep prepared, conf *confined, out childFD) (*process, error) {
	// Both ends blocking: the shim's reads are plain syscalls, and so are ours (control
	// bytes, sent with MSG_DONTWAIT, see control; the shim's report once it has exited,
	// controlSocket.report): without the runtime's poller, the socket costs no fcntl,
	// epoll_ctl nor deadline timer a run.
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("shim control socket: %w", err)
	}
	ours := controlSocket{fd: fds[0], set: true}
	theirs := fds[1]
	defer syscall.Close(theirs) // once started, only the shim holds it: its end of file is the shim's

	opts := conf.opts
	opts.Gate = spec.Gate != nil
	// fd 3: shim.ControlFD; fd 4: shim.RulesetFD, when the run is sandboxed; then the
	// renewals pipe, when the run has a fence. conf, which holds the ruleset open, lives
	// until Run returns.
	extra := append(make([]int, 0, 3), theirs)
	for _, f := range conf.files() {
		extra = append(extra, int(f.Fd()))
	}
	var renewals renewalPipe
	if spec.Fence > 0 && spec.Held != nil {
		opts.FenceMs = max(spec.Fence.Milliseconds(), 1)
		shimEnd, ourEnd, err := renewalsPipe()
		if err != nil {
			syscall.Close(ours.fd)
			return nil, err
		}
		defer syscall.Close(shimEnd)
		renewals = ourEnd
		opts.RenewalsFD = shim.ControlFD + len(extra)
		extra = append(extra, shimEnd)
	}
	// Sized once for the usual options (a few more only grow it): "SHIM... OPTION... -- PATH ARGV...".
	args := append(make([]string, 0, len(spec.Shim)+maxShimArgs+2+len(spec.Argv)), spec.Shim...)
	args = append(opts.AppendArgs(args), "--", prep.path)
	args = append(args, spec.Argv...)
	// No Pdeathsig (and no thread lock): the shim learns that the agent died
	// from its control socket's end of file, which the kernel delivers however
	// the agent ends, whichever thread forked the shim.
	p, err := spawn(spec.Shim[0], args, spec, prep, out, extra, false)
	runtime.KeepAlive(conf) // its files' fds are in extra: open until the shim has them
	if err != nil {
		syscall.Close(ours.fd)
		renewals.close()
		return nil, err
	}
	p.ctl = ours
	p.renewals = renewals
	return p, nil
}

// maxShimArgs is room for the shim's usual options in a run's command line (a fence, its
// renewals, oom_score_adj, a few rlimits, Landlock; two words each).
const maxShimArgs = 16

// renewalsPipe is a shim's renewals pipe (shim.RenewalsFlag): its read end for the shim and
// our write end, non-blocking from the pipe2 call, so a renewal never waits for a shim that
// does not read, for no fcntl a run. pipe2's flag is both ends': harmless on the shim's,
// which the shim makes non-blocking itself anyway (its protocol; the C shim unconditionally).
func renewalsPipe() (shimEnd int, ours renewalPipe, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return -1, renewalPipe{}, fmt.Errorf("shim renewals pipe: %w", os.NewSyscallError("pipe2", err))
	}
	return p[0], renewalPipe{fd: p[1], set: true}, nil
}

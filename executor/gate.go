//go:build unix

package executor

import (
	"context"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/port-runner/port-runner/internal/shim"
)

// passGate calls spec.Gate: "" when the command may start, else the label of the Result of
// a run whose command never started (Spec.Gate). waited gets how long Gate took: the run's
// start mark on its way, no part of the run's Duration.
func passGate(ctx context.Context, spec Spec, waited *time.Duration) string {
	t0 := time.Now()
	err := spec.Gate()
	*waited = time.Since(t0)
	if err != nil {
		return "not started: " + err.Error()
	}
	if err := context.Cause(ctx); err != nil {
		return CancelLabel(err)
	}
	return ""
}

// goAhead tells a gated shim to start its command (shim.Go): the first byte on a fresh socket,
// which therefore has room for it. An error means the shim is gone, which exited tells.
func (p *process) goAhead() {
	p.wentAhead = true
	_ = unix.Sendto(p.ctl.fd, []byte{shim.Go}, unix.MSG_DONTWAIT, nil)
}

// refuse ends a gated shim whose command must not start: any byte but shim.Go is a no, after
// which the shim ends its unstarted command and exits; one that has not within drainTimeout
// (stopped, or starved) is killed, and its unstarted command with it (the C shim's has
// Pdeathsig; the Go shim forks it only after the go). Never a go: the command never starts.
func (p *process) refuse() {
	p.control(shim.Kill)
	exited := p.watching() // nothing watches a process before supervise
	t := time.NewTimer(drainTimeout)
	defer t.Stop()
	select {
	case <-exited:
	case <-t.C:
		killGroup(p.pid, syscall.SIGKILL)
		<-exited
	}
}

// end, deferred by Run, ends and reaps its process on every path, a panic's too (a function
// of the caller's in Spec, or Run's own), and waits for the copy of its output (copied; nil:
// none runs), which must not write to Run's out once Run returned. Each step does nothing once
// done; a nil p (not forked) needs none.
func (p *process) end(spec Spec, runDir string, conf *confined, pr *os.File, copied <-chan struct{}) {
	if p == nil {
		return
	}
	p.abandon(spec, runDir, conf) // a gated shim refused: its command never starts
	if copied != nil {
		drain(pr, copied)
	}
	p.release()
}

// began says whether the command may have started: once forked, or under a gated shim once
// told to go. A nil p (not forked) has not.
func (p *process) began(spec Spec) bool {
	return p != nil && (spec.Gate == nil || !shimGates(spec) || p.wentAhead)
}

// abandon ends and reaps a process Run has not finished: a gated shim whose gate did not pass,
// and the process of a Run that panicked (a function of the caller's in Spec, or Run's own; Run's
// recover makes the Result), so that every process Run starts is reaped and its Reaper ticket
// closed. A shim is refused (one that had its go kills its command's tree on that 'K'), a
// command without one killed. What finish and reaped did already is not done again: a second
// kill, reap or report could reach another process, its pid reused.
func (p *process) abandon(spec Spec, runDir string, conf *confined) {
	if p.reported {
		return
	}
	if !p.finished {
		if p.ctl.set {
			p.refuse()
		} else {
			p.kill()
		}
		p.finish()
	}
	p.reaped(spec, runDir, conf)
}

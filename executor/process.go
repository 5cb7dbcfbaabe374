//go:build unix

package executor

import (
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/port-runner/port-runner/internal/shim"
)

// The exec shims ShimFor finds, as it and the agent's isolation log line name them.
const (
	ShimC           = "C"            // port-runner-shim, the static C one
	ShimGo          = "Go"           // port-runner-shim, the Go one
	ShimUnknown     = "unknown"      // port-runner-shim that says neither
	ShimAgentBinary = "agent binary" // the agent's own binary under its shim subcommand
	ShimNone        = "none"         // no shim: commands run in a plain process group
)

// process is a started command as Run controls it: directly, or through the
// exec shim (ctl set).
type process struct {
	pid    int
	exited chan struct{} // closed when the process has exited (see watching); nil until watched
	// unwatched is the pidfd the kernel made with the process while nothing watches it (see
	// watching), closed at release if nothing ever did.
	unwatched pidfdHold
	reap      func() (syscall.WaitStatus, error) // reaps it once exited is closed; nil: reapPid
	status    *syscall.WaitStatus                // how it ended, once finish has reaped it
	finished  bool                               // finish has reaped it (or failed to): abandon does not
	reported  bool                               // reaped was called: abandon does nothing
	wentAhead bool                               // a gated shim was told to start its command
	ctl       controlSocket                      // the shim's control socket; unset without a shim
	// renewals is our end of the shim's renewals pipe (shim.RenewalsFlag): unset without a
	// shim or a fence, and then renewals go on ctl.
	renewals renewalPipe
	unlock   func()       // ends what startProcess locked (the forking thread)
	reaper   reaperTicket // tells the agent's reaper it is reaped (Spec.Reaper)
}

// controlSocket is our end of the shim's control socket: a plain blocking fd, not an os.File
// (see startShimmed). The zero value: the process has no shim.
type controlSocket struct {
	fd  int
	set bool
}

// nullInput is every command's stdin: /dev/null, opened once (nil: each start opens it, an
// open and a close per run more). Every command shares its open file description, so one
// that sets O_NONBLOCK or a flock on its stdin does it for all: harmless on /dev/null,
// which reads as end of file either way.
var nullInput = sync.OnceValue(func() *os.File {
	f, err := os.Open(os.DevNull)
	if err != nil {
		return nil // each start's own, then
	}
	return f
})

// terminate asks the command to end: SIGTERM to its group (the shim passes it on). false:
// the shim's socket is full; send shim.Terminate again later (control).
func (p *process) terminate() bool {
	if p.ctl.set {
		return p.control(shim.Terminate)
	}
	killGroup(p.pid, syscall.SIGTERM)
	return true
}

// kill ends the command's group at once. false: the shim's socket is full; send shim.Kill
// again later (control). It never waits, so Renewals too may call it.
func (p *process) kill() bool {
	if p.ctl.set {
		// SIGKILL cannot be caught and passed on: the shim kills the command's group itself.
		return p.control(shim.Kill)
	}
	killGroup(p.pid, syscall.SIGKILL)
	return true
}

// killShim kills the shim (and its group) itself if it is stopped, when it has not ended the
// command it was told to kill (see ending): its command keeps it stopped (see control). Its
// command's leader dies with it (Pdeathsig), the rest goes to the agent's Reaper. A shim that
// runs is left to end its command's tree, however long reaping a large one takes: killed,
// it would leave that tree to a Reaper (none without Spec.Reaper), past the run's end. true
// once the shim is killed (or there is none); false: it runs, ask again later.
func (p *process) killShim() bool {
	if !p.ctl.set {
		return true
	}
	if !stopped(p.pid) {
		return false
	}
	killGroup(p.pid, syscall.SIGKILL)
	return true
}

// finish runs once the process has exited: it kills what is left of its group,
// reaps it and says how the command ended.
func (p *process) finish() Result {
	// Where the platform allows, the process has exited but is not reaped yet,
	// so its pid still names the process group and cannot have been reused:
	// killing -pid is safe. Kill whatever is left of the group in every case: a
	// run is over when its command is, and Port is told it ended, so nothing of
	// it may keep working (or writing to our pipe) unobserved. Even a shim that
	// exited by itself may leave some: a process of the command can join the
	// shim's group (setpgid, same session), and the C shim's reap_all gives up
	// on children it cannot see in /proc.
	killGroup(p.pid, syscall.SIGKILL)
	reap := p.reap
	if reap == nil {
		reap = p.reapPid
	}
	ws, waitErr := reap()
	p.finished = true // set only now: a panic before leaves abandon to reap it
	if waitErr == nil {
		p.status = &ws
	}
	res := classify(p.status, waitErr)
	if p.ctl.set {
		msg := p.ctl.report()
		switch {
		case msg == shim.NoteProcesses:
			res.limit = LimitProcesses
		case msg != "":
			res = Result{ExitCode: -1, Label: "could not start: " + msg}
		}
	}
	return res
}

// classify says how a command ended from its wait status (nil: it could not be reaped).
func classify(ws *syscall.WaitStatus, waitErr error) Result {
	if ws == nil {
		msg := "unknown end"
		if waitErr != nil {
			msg = waitErr.Error()
		}
		return Result{ExitCode: -1, Label: "wait failed: " + msg}
	}
	if ws.Signaled() {
		return Result{ExitCode: -1, Label: "killed by signal " + ws.Signal().String(), Signal: ws.Signal()}
	}
	code := ws.ExitStatus()
	if code == 0 {
		return Result{Success: true, Label: "exit code 0"} // a constant: no string to build, most runs
	}
	return Result{ExitCode: code, Label: "exit code " + strconv.Itoa(code)}
}

// reapPid reaps the exited child pid.
func (p *process) reapPid() (syscall.WaitStatus, error) {
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(p.pid, &ws, 0, nil)
		if err != syscall.EINTR {
			return ws, os.NewSyscallError("wait4", err)
		}
	}
}

// signaled reports whether the process (the shim, where there is one) was killed by a
// signal, once finish has reaped it.
func (p *process) signaled() bool { return p.status != nil && p.status.Signaled() }

// reaped tells the agent's reaper the process is gone, and the run's cell that it may
// serve another run when the run was sandboxed in it and the shim ended by itself (else
// something of the run may outlive the shim, in a domain that reaches the cell).
func (p *process) reaped(spec Spec, runDir string, conf *confined) {
	p.reported = true
	p.reaper.ended(p.signaled())
	if conf.inCell() && p.ctl.set && !p.signaled() && p.status != nil && spec.Isolation.Runs != nil {
		spec.Isolation.Runs.served(runDir)
	}
}

func (p *process) release() {
	if p.ctl.set {
		_ = unix.Close(p.ctl.fd)
	}
	if p.unwatched.set {
		_ = unix.Close(p.unwatched.fd)
	}
	p.renewals.close()
	if p.unlock != nil {
		p.unlock()
	}
}

func killGroup(pgid int, sig syscall.Signal) {
	if pgid > 1 { // never kill(-1): only the group of a process Run started
		_ = syscall.Kill(-pgid, sig) // ESRCH: group already empty
	}
}

// controlRetry is how often a control byte a full socket refused is sent again (ending).
const controlRetry = 10 * time.Millisecond

// control sends the shim one control byte, never waiting (our end is blocking, see
// startShimmed: a plain write could block an OS thread for ever on a shim that stopped
// reading), and resumes the shim, which its command may have stopped: a command of the
// agent's uid (no runAs) can SIGSTOP it or its group, and a stopped shim reads no control
// byte and enforces no fence, so its command would outlive every timeout, cancel and lease.
// SIGCONT comes after the byte, so the shim resumes to find it; the shim is not reaped yet
// (Run reaps it only once supervise and the renewals are done), so its pid still names its
// group. false: the socket is full (the shim is behind); the caller sends the byte again
// later. Any other error means the shim is gone, which exited will tell.
func (p *process) control(b byte) bool {
	var err error = unix.EINTR
	for err == unix.EINTR {
		err = unix.Sendto(p.ctl.fd, []byte{b}, unix.MSG_DONTWAIT, nil)
	}
	p.resume()
	return err != unix.EAGAIN
}

// resume continues the shim and its group, which its command may have stopped (control).
func (p *process) resume() {
	if p.ctl.set {
		killGroup(p.pid, syscall.SIGCONT)
	}
}

// tryControl writes a control message only if the socket takes it now, never waiting: a
// shim that has stopped reading (stopped by its command, say) must not hold up the one
// goroutine that renews every command's lease (Renewals); its own fence then ends it.
func (p *process) tryControl(m []byte) {
	_ = unix.Sendto(p.ctl.fd, m, unix.MSG_DONTWAIT, nil) // EAGAIN: full; not renewed
}

// tryRenew renews the shim's fence, never waiting (see tryControl): on the renewals pipe,
// which the shim reads when it looks at the fence anyway, so a renewal wakes no shim; on
// the control socket where there is no pipe.
func (p *process) tryRenew() {
	if p.renewals.set {
		p.renewals.renew()
		return
	}
	p.tryControl([]byte{shim.Renew})
}

// renewalPipe is the executor's end of a shim's renewals pipe: a raw non-blocking fd that
// plain write calls serve (the runtime's poller would add two epoll calls a run for nothing:
// a renewal never waits). A value, as controlSocket: nothing to allocate per run. The zero
// value: no pipe.
type renewalPipe struct {
	fd  int
	set bool
}

func (r renewalPipe) renew() {
	_, _ = syscall.Write(r.fd, []byte{shim.Renew}) // EAGAIN: full, the shim not reading; not renewed
}

func (r renewalPipe) close() {
	if r.set {
		_ = syscall.Close(r.fd)
	}
}

// report is why the shim could not start the command, "" when it did, or the note it left
// after the command's end (shim.NoteProcesses): what it wrote to the socket, read once it has
// exited. Its end is closed then (the command never had it: close-on-exec), so the reads end
// at once, on end of file, without the runtime's poller; only a copy that a process the agent
// forks meanwhile holds until its exec makes them wait, for drainTimeout at most.
func (c controlSocket) report() string {
	var buf [4096]byte // on the stack: io.ReadAll's growing buffer costs allocations a run
	n := 0
	var deadline time.Time
	for n < len(buf) {
		m, err := recvNow(c.fd, buf[n:])
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			if deadline.IsZero() {
				deadline = time.Now().Add(drainTimeout)
			}
			left := time.Until(deadline)
			if left <= 0 {
				return string(buf[:n])
			}
			_, _ = unix.Poll([]unix.PollFd{{Fd: int32(c.fd), Events: unix.POLLIN}}, int(left.Milliseconds())+1)
			continue
		case err != nil || m <= 0:
			return string(buf[:n])
		}
		n += m
	}
	return string(buf[:n])
}

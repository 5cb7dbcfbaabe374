package executor

import (
	"time"

	"github.com/port-runner/port-runner/internal/shim"
)

// shimKillWait is how long a shim has, once told to kill its command, before the executor
// looks whether it is stopped, and kills it then (process.killShim); again every
// shimKillWait while it runs: killing and reaping the command's tree takes it milliseconds,
// a large tree's seconds.
const shimKillWait = 2 * time.Second

// ending ends a command for supervise, and never waits: SIGTERM to the command's group,
// SIGKILL once the grace has passed, and under a shim, the shim itself killed if it has not
// ended the command shimKillWait after that and is stopped. A command that runs as the
// agent's uid (no runAs) can stop its shim (SIGSTOP), which then passes nothing on, so every
// control byte resumes the shim (process.control); one its command stops again at once is
// only ended by killing it: the command's leader dies with it (Pdeathsig), and what else is
// left goes to the agent's Reaper. A control byte the shim's full socket refuses is sent
// again every controlRetry, on the same timer, while the next step stays due on time.
type ending struct {
	p      *process
	grace  time.Duration
	step   int       // what was done: 0 nothing, 1 terminated, 2 killed, 3 the shim killed
	due    time.Time // when the next step is; zero: none is left
	unsent byte      // the step's control byte, until the shim's socket takes it; 0: none
	timer  *time.Timer
}

// start ends the command: its first step, at once.
func (e *ending) start() { e.next() }

// C fires when the ending has something to do (fired); nil before start.
func (e *ending) C() <-chan time.Time {
	if e.timer == nil {
		return nil
	}
	return e.timer.C
}

// fired takes the next step if it is due, else sends the control byte again.
func (e *ending) fired() {
	if !e.due.IsZero() && !time.Now().Before(e.due) {
		e.next()
		return
	}
	if e.unsent != 0 && e.p.control(e.unsent) {
		e.unsent = 0
	}
	e.arm()
}

func (e *ending) next() {
	if e.step == 2 && !e.p.killShim() {
		// The shim runs, ending the command's tree: look again later, and go on sending
		// the 'K' if its socket has not taken it yet.
		e.due = time.Now().Add(shimKillWait)
		e.arm()
		return
	}
	e.step++
	e.unsent, e.due = 0, time.Time{}
	switch e.step {
	case 1:
		if !e.p.terminate() {
			e.unsent = shim.Terminate
		}
		e.due = time.Now().Add(e.grace)
	case 2:
		if !e.p.kill() {
			e.unsent = shim.Kill
		}
		if e.p.ctl.set {
			e.due = time.Now().Add(shimKillWait)
		}
	}
	e.arm()
}

// arm sets the timer for what is left to do: a retry of the control byte, or the next step.
func (e *ending) arm() {
	var d time.Duration
	switch {
	case e.unsent != 0:
		d = controlRetry
		if !e.due.IsZero() {
			d = min(d, time.Until(e.due))
		}
	case !e.due.IsZero():
		d = time.Until(e.due)
	default:
		return
	}
	if e.timer == nil {
		e.timer = time.NewTimer(d)
	} else {
		e.timer.Reset(d)
	}
}

func (e *ending) stop() {
	if e.timer != nil {
		e.timer.Stop()
	}
}

package executor

import (
	"context"
	"time"
)

// supervise waits for the command to end, or ends it on timeout, cancel or a limit it went
// over (see ending: SIGTERM, then SIGKILL after the grace). Meanwhile it renews the command's
// lease (see Spec.Fence). It returns why it ended the command, "" when it ended by itself.
//
// A quick command's end is seen in its output's (copied: every writer of its pipe gone) and
// one waitid: the process is watched on its own (watching: a goroutine, its pidfd in the
// runtime's poller) only once it outlives its output (it closed it and goes on, or its end
// came before its exit's), it runs longer than watchAfter, or supervise ends it. Until then
// nothing but its pipe's end can tell that it exited; where its output outlives it (held by a
// process that left its group), the watch started watchAfter in tells.
func supervise(ctx context.Context, spec Spec, p *process, conf *confined, copied <-chan struct{}) string {
	var exited <-chan struct{} = p.exited // set where the platform watches every process from its start
	var watchC <-chan time.Time
	if exited == nil {
		t := time.NewTimer(watchAfter)
		defer t.Stop()
		watchC = t.C
	}
	var timeoutC <-chan time.Time
	if spec.Timeout > 0 {
		t := time.NewTimer(spec.Timeout)
		defer t.Stop()
		timeoutC = t.C
	}
	var checkC <-chan time.Time
	if conf.watched() {
		t := time.NewTicker(limitCheckInterval)
		defer t.Stop()
		checkC = t.C
	}
	ending := ending{p: p, grace: spec.KillGrace}
	if ending.grace <= 0 {
		ending.grace = DefaultKillGrace
	}
	defer ending.stop()
	lease := renewLease(spec, p)
	defer lease.stop()
	done := ctx.Done()
	var reason string
	end := func(why string) {
		if reason == "" {
			reason = why
			exited = p.watching() // its output may outlive it: a process that left its group
			ending.start()
		}
	}
	for {
		select {
		case <-exited:
			return reason
		case <-copied:
			copied = nil
			if p.exitedNow() {
				return reason
			}
			exited = p.watching() // it closed its output, or is ending
		case <-watchC:
			watchC = nil
			exited = p.watching()
		case <-timeoutC:
			timeoutC = nil
			end("timed out after " + humanDuration(spec.Timeout))
		case <-done:
			done = nil
			end(CancelLabel(context.Cause(ctx)))
		case <-ending.C():
			ending.fired()
		case <-lease.tick():
			lease.ticked()
		case <-lease.lastingC():
			lease.renewLasting()
		case <-checkC:
			if hit := conf.exceeded(); hit != "" {
				checkC = nil
				end(spec.Isolation.Limits.LimitLabel(hit))
			}
		}
	}
}

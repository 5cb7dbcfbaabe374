package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/port-runner/port-runner/executor"
	"github.com/port-runner/port-runner/internal/runmsg"
	"github.com/port-runner/port-runner/reporter"
)

// executed is what running one run's command gave: how it ended and what goes to Port
// with its closing, and for `port-runner try` what the command got.
type executed struct {
	spec    executor.Spec
	masks   []string
	res     executor.Result
	runLog  *reporter.RunLog
	outcome reporter.Outcome
	// cancelled: Port ended the run while its command ran, which was stopped (README
	// "Cancelled in Port"); no closing goes.
	cancelled bool
	// left: its take failed (took); its command never started, and the next holder decides it.
	left bool
}

// execute runs a taken run's command, on its target (action run or workflow node run), for
// as long as the run's lease holds: the command stops when it does not (the fence), and
// its shim kills it if this agent cannot even say so (frozen). A synchronous action's
// response goes before the closing, a node run's outputs with it (outcome).
func (a *Agent) execute(r *run) executed {
	run, act, log := r.msg, r.act, r.log
	spec, secrets, err := act.spec(run)
	revoke := func() {}
	var files *runFiles
	if err == nil {
		files, err = newRunFiles(&spec, run, a.runs)
		spec.Reaper = a.deps.Reaper
	}
	var token string
	if err == nil {
		defer files.remove(log)
		// The command's Port API token: masked in the run's log, valid until the command
		// ends, so it is dead before the run is closed.
		token, revoke = a.proxy.Register(run.ID, run.Action, blueprint(run), act.allow)
		defer revoke()
		secrets = append(secrets, token)
		withPortAPI(&spec, a.proxyURL, token)
	}
	runLog := a.reporter.StartOn(r.report, a.target(run), run.ID, secrets, zap.String("action", run.Action))
	a.proxy.SetMask(token, runLog) // what the command sends to its log through the proxy is masked too
	var res executor.Result
	var cancelled bool
	if err != nil {
		if a.took(r) != nil {
			return executed{left: true}
		}
		noteRerun(r, runLog)
		res = executor.Result{ExitCode: -1, Label: "could not start: " + err.Error()}
		log.Warn("run could not start", zap.Error(err))
	} else {
		var left bool
		if res, cancelled, left = a.runCommand(r, &spec, token, runLog); left {
			return executed{left: true}
		}
		revoke()
	}
	r.life.to(phaseCommandEnded)
	var output map[string]any
	result := resultOf(res)
	if cancelled {
		// Port ended the run: it is FAILURE there whatever the command did, and no closing
		// goes to read its files into.
		res.Success, result = false, resultCancelledInPort
	} else if files != nil {
		var bad string
		if output, bad = a.afterCommand(r.report, run, files, runLog, log); bad != "" {
			res.Success, res.Label = false, res.Label+"; "+bad
		}
	}
	a.metrics.CountRun(run.Action, result)
	r.life.result(res.Success, res.Label) // what /status shows once the run is finished
	return executed{cancelled: cancelled, spec: spec, masks: secrets, res: res, runLog: runLog, outcome: reporter.Outcome{
		Success: res.Success,
		Label:   res.Label,
		Summary: "port-runner: " + res.Label + " after " + res.Duration.Round(time.Millisecond).String(),
		Output:  output,
	}}
}

// runCommand runs the command under the run's lease: it is cancelled when the lease says
// the command must stop (its cause is the label), or when Port ended the run (cancelled),
// and the executor renews the shim's fence only while the lease holds.
func (a *Agent) runCommand(r *run, spec *executor.Spec, token string, runLog *reporter.RunLog) (res executor.Result, cancelled, left bool) {
	ctx, cancel := context.WithCancelCause(r.work)
	defer cancel(nil)
	stopped := r.lease.stopped()
	defer context.AfterFunc(stopped, func() { cancel(context.Cause(stopped)) })()
	spec.Fence = a.shimFence()
	spec.Renewals = a.renewals
	spec.Held = func() bool { return r.lease.held().err == nil }
	spec.Lasts = func() time.Duration { return r.lease.held().lasts }
	spec.Lasting = r.lease.lasting()
	spec.OnLasting = func(lasts time.Duration) {
		r.log.Info("the run's command goes on until its lease ends, whatever becomes of this replica",
			zap.Duration("lease", lasts.Round(time.Second)))
	}
	spec.OnStart = func(pid int) {
		a.proxy.Bind(token, pid) // the token works from this process tree only
		r.life.started(pid)
	}
	// The run is readied while its take goes on (took), and its command starts once that
	// succeeded: the executor's gate; a run with no take under way (try) has none.
	gate := &runGate{a: a, ctx: ctx, r: r, cancel: cancel, runLog: runLog}
	if r.taking != nil {
		spec.Gate = gate.pass
	} else {
		_ = gate.pass()
	}
	res = executor.Run(ctx, *spec, runLog)
	// Run may have ended before its gate (its command could not start): the take's outcome
	// is then known only now. Such a run never started: it is not said to have, not watched
	// and not asked about; only a rerun's note opens its log.
	err := a.took(r)
	if err == nil && !gate.passed {
		noteRerun(r, runLog)
	}
	if r.watched != nil {
		cancelled = a.watch.unwatch(r.watched)
		r.watched = nil
	}
	if err != nil { // never started, never watched: left
		return res, false, true
	}
	a.metrics.ObserveRunDuration(r.msg.Action, res.Duration)
	return res, cancelled, false
}

// runGate is runCommand's gate (executor.Spec.Gate): pass is nil once r's take succeeded,
// and then the same on every call. The first such call (passed) watches the run (watchRun)
// before anything of it can reach Port, so a refusal of its first log lines is heard even
// before its command starts, says it started and asks about a run held long (askHeld).
type runGate struct {
	a      *Agent
	ctx    context.Context
	r      *run
	cancel context.CancelCauseFunc
	runLog *reporter.RunLog
	passed bool
}

func (g *runGate) pass() error {
	a, r := g.a, g.r
	if err := a.took(r); err != nil {
		return err
	}
	if !g.passed {
		g.passed = true
		now := time.Now()
		held := a.heldLong(r, now) // decided once: watchRun and askHeld agree on it
		a.watchRun(r, g.cancel, now, held)
		noteRerun(r, g.runLog)
		a.log.Info("run started", zap.String("run_id", r.msg.ID), zap.String("action", r.msg.Action), // r.log's (received)
			zap.String("at", r.where), zap.Bool("rerun", r.rerun))
		if held {
			a.askHeld(g.ctx, r)
		}
	}
	return nil
}

// watchRun watches r for a cancel in Port (portWatch) from its take's success, not while its
// take may be held (a partition's commit with no room for its mark), so a run whose command
// has not started costs Port nothing however long it waits; the interval counts from its
// take's start, so a run held just under the interval is not first asked about up to two
// intervals after Port ended it (README "Cancelled in Port"). One context for the lease and
// Port: whichever ends the command first says why.
//
// now is the take's success; held: askHeld asks about the run next, so it counts as
// checked from now and no turn of the watch asks about it meanwhile.
func (a *Agent) watchRun(r *run, cancel context.CancelCauseFunc, now time.Time, held bool) {
	since, checked := now, time.Time{}
	if r.taking != nil {
		since = r.taking.began
	}
	if held {
		checked = now
	}
	r.watched = a.watch.watch(cancel, r.msg.ID, a.target(r.msg), runmsg.IsWorkflowNodeRun(r.msg.ID), r.log, since, checked)
}

// heldLong says whether r's take, succeeded at now, was held for the watch's interval or
// longer: not asked about meanwhile, Port may have ended it (askHeld).
func (a *Agent) heldLong(r *run, now time.Time) bool {
	return r.taking != nil && now.Sub(r.taking.began) >= a.watch.interval
}

// askHeld asks Port once, as its take succeeded, about a run held long (heldLong): if Port
// ended it, its command never starts (portWatch.stop cancels ctx, which the executor reads
// after its gate). A Port slow or down holds it one interval more at most (README
// "Cancelled in Port").
func (a *Agent) askHeld(ctx context.Context, r *run) {
	ctx, stop := context.WithTimeout(ctx, a.watch.interval)
	defer stop()
	a.watch.ask(ctx, r.watched)
}

// renew starts renewing the commands' leases from one goroutine (executor.Renewals); the
// caller calls stop once none of its commands runs any more.
func (a *Agent) renew() (stop func()) {
	a.renewals = executor.NewRenewals(a.shimFence() / 4)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { a.renewals.Run(ctx) })
	return func() { cancel(); wg.Wait() }
}

func resultOf(res executor.Result) string {
	if res.Success {
		return "success"
	}
	return "failure"
}

// afterCommand reads what the command left for Port: it sends an action run's response
// now, before the closing request, and returns a node run's output for it. A file that is
// not a regular file fails the run: bad says why, for its label. Other problems are told in
// the run's log and do not change the run's result.
func (a *Agent) afterCommand(report context.Context, run runmsg.Run, files *runFiles, runLog *reporter.RunLog, log *zap.Logger) (output map[string]any, bad string) {
	note := func(format string, args ...any) {
		_, _ = fmt.Fprintf(runLog, "port-runner: "+format+"\n", args...)
	}
	refused := func(env string, err error) bool {
		var e errBadRunFile
		if errors.As(err, &e) {
			bad = fmt.Sprintf("$%s is %s", env, e.why)
			log.Warn("run file refused: the run fails", zap.String("file", env), zap.Error(err))
		}
		return bad != ""
	}
	out, err := files.outputs()
	if err != nil && !refused(envOutputFile, err) {
		note("$%s ignored: %v", envOutputFile, err)
		log.Warn("output file ignored", zap.Error(err))
	}
	resp, ok, err := files.responseBody()
	switch {
	case err != nil && refused(envResponseFile, err):
	case err != nil:
		note("$%s ignored: %v", envResponseFile, err)
		log.Warn("response file ignored", zap.Error(err))
	case ok:
		if err := a.api.SendResponse(report, run.ID, runLog.Mask(resp)); err != nil {
			note("the response could not be sent to Port: %v", err)
			log.Warn("response not sent", zap.Error(err))
		}
	}
	return out, bad
}

package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/port-runner/port-runner/executor"
	"github.com/port-runner/port-runner/internal/runmsg"
	"github.com/port-runner/port-runner/reporter"
)

// executed is what running one run gave: whether its record is finished, and for
// `port-runner try` what the command got and how it ended.
type executed struct {
	finished bool
	spec     executor.Spec
	masks    []string
	res      executor.Result
}

// execute runs a started run's command and closes the run in Port, on its target (action
// run or workflow node run): a synchronous action's response goes before the closing, a
// node run's outputs with it.
func (a *Agent) execute(work, report context.Context, run runmsg.Run, act *action, life *runLife, rerun bool, where string, log *zap.Logger) executed {
	tgt := a.target(run)
	spec, secrets, err := act.spec(run)
	revoke := func() {}
	var files *runFiles
	if err == nil {
		files, err = newRunFiles(&spec, run, a.runs)
		spec.Reaper = a.deps.Reaper
	}
	var token string
	if err == nil {
		defer files.remove()
		// The command's Port API token: masked in the run's log, valid until the command
		// ends, so it is dead before the run is closed.
		token, revoke = a.proxy.Register(run.ID, run.Action, blueprint(run), act.allow)
		defer revoke()
		secrets = append(secrets, token)
		withPortAPI(&spec, a.proxyURL, token)
	}
	runLog := a.reporter.StartOn(report, tgt, run.ID, secrets, zap.String("action", run.Action))
	a.proxy.SetMask(token, runLog.Mask) // what the command sends to its log through the proxy is masked too
	if rerun {
		_, _ = runLog.Write([]byte("port-runner: running again: the agent that started this run stopped before it ended (onInterrupted: rerun)\n"))
	}
	var res executor.Result
	if err != nil {
		res = executor.Result{ExitCode: -1, Label: "could not start: " + err.Error()}
		log.Warn("run could not start", zap.Error(err))
	} else {
		log.Info("run started", zap.String("at", where), zap.Bool("rerun", rerun))
		spec.OnStart = func(pid int) {
			a.proxy.Bind(token, pid) // the token works from this process tree only
			life.started(pid)
		}
		res = executor.Run(work, spec, runLog)
		revoke()
		a.metrics.RunDuration.WithLabelValues(run.Action).Observe(res.Duration.Seconds())
	}
	life.to(phaseCommandEnded)
	var output map[string]any
	if files != nil {
		var bad string
		if output, bad = a.afterCommand(report, run, files, runLog, log); bad != "" {
			res.Success, res.Label = false, res.Label+"; "+bad
		}
	}
	result := "failure"
	if res.Success {
		result = "success"
	}
	a.metrics.RunsTotal.WithLabelValues(run.Action, result).Inc()
	outcome := reporter.Outcome{
		Success: res.Success,
		Label:   res.Label,
		Summary: fmt.Sprintf("port-runner: %s after %s", res.Label, res.Duration.Round(time.Millisecond)),
		Output:  output,
	}
	finished := a.closeRun(report, tgt, run.ID, res.Success, log, life, func(ctx context.Context) error { return runLog.Close(ctx, outcome) })
	if finished {
		log.Info("run closed", zap.String("result", result), zap.String("label", res.Label), zap.Duration("duration", res.Duration))
	}
	return executed{finished: finished, spec: spec, masks: secrets, res: res}
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

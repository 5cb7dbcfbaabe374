package agent

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/itchyny/gojq"
	"go.uber.org/zap"

	"github.com/port-runner/port-runner/internal/echo"
	"github.com/port-runner/port-runner/internal/jqerr"
	"github.com/port-runner/port-runner/internal/runmsg"
	"github.com/port-runner/port-runner/metrics"
	"github.com/port-runner/port-runner/reporter"
)

// routing is why a run does or does not go to an action of this deployment (README
// "Routing").
type routing int

const (
	routed        routing = iota // to the action returned
	notConfigured                // its action is not under actions: another deployment's
	filtered                     // its action's when was not true: another deployment's
	unmatchedNode                // a workflow node run no workflowNode matches
)

func compileJQ(key, expr string) (*gojq.Code, error) {
	q, err := gojq.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("%s: parse jq %q: %w", key, expr, err)
	}
	code, err := gojq.Compile(q)
	if err != nil {
		return nil, fmt.Errorf("%s: compile jq %q: %w", key, expr, err)
	}
	return code, nil
}

// isTrue runs code over v: only exactly true is true (a jq error, another value or no value
// is not), as Port's own agent reads its mappings' enabled filter. A filter that never ends
// (`def f: f; f`) gets the message selectors' time, so it cannot stall a partition.
func isTrue(code *gojq.Code, v any) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), runmsg.SelectorTimeout)
	defer cancel()
	out, ok := code.RunWithContext(ctx, v).Next()
	if err, isErr := out.(error); isErr {
		return false, err
	}
	return ok && out == true, nil
}

// takes reports whether the action's when filter (none: every run) takes the run. A filter
// that fails is false, logged with the kind of error only, never the value it failed on.
func (act *action) takes(run runmsg.Run, log *zap.Logger) bool {
	if act.when == nil {
		return true
	}
	ok, err := isTrue(act.when, run.Context["message"])
	if err != nil {
		log.Warn("actions."+act.name+".when failed; the run is left to another deployment",
			zap.String("run_id", run.ID), zap.String("jq_error", jqerr.Kind(err)))
	}
	return ok
}

// route finds the action of this deployment that runs run. An action run goes to its
// action, if configured and its when takes it. A workflow node run goes to the first action,
// by name, whose workflowNode matches it and whose when takes it, and takes that action's
// name. An action entry with a workflowNode still serves action runs of its name too.
func (a *Agent) route(run *runmsg.Run) (*action, routing) {
	if !runmsg.IsWorkflowNodeRun(run.ID) {
		act, ok := a.actions[run.Action]
		switch {
		case !ok:
			return nil, notConfigured
		case !act.takes(*run, a.log):
			return nil, filtered
		}
		return act, routed
	}
	why := unmatchedNode
	for _, act := range a.nodeActions {
		if !act.node.matches(*run) {
			continue
		}
		if !act.takes(*run, a.log) {
			why = filtered
			continue
		}
		run.Action = act.name
		run.Context["action"] = act.name // Decode made this map for this run alone
		return act, routed
	}
	return nil, why
}

// nodeActionsByName are the actions with a workflowNode, sorted by name: the order route
// tries them in, fixed once rather than sorted for every node run.
func nodeActionsByName(actions map[string]*action) []*action {
	var out []*action
	for _, act := range actions {
		if act.node != nil {
			out = append(out, act)
		}
	}
	slices.SortFunc(out, func(x, y *action) int { return strings.Compare(x.name, y.name) })
	return out
}

// leave handles a run no action here takes: counted and logged, never executed. Left to
// another deployment, it is not reported in Port; an unmatched node run is completed FAILED
// when workflowNodeRuns.unmatched says fail (port-agent's behaviour; a workflow otherwise
// waits on it), while this replica holds the run (closeUnrun).
func (a *Agent) leave(r *run, msg runmsg.Run, why routing) verdict {
	log := a.log.With(zap.String("at", r.where), zap.String("run_id", msg.ID), zap.String("action", echo.Cut(msg.Action)))
	switch why {
	case notConfigured:
		a.count(metrics.OutcomeIgnored)
		log.Debug("ignoring run of an action not configured here")
		return finished
	case filtered:
		a.count(metrics.OutcomeFiltered)
		log.Debug("leaving the run to another deployment: its action's when is not true")
		return finished
	}
	a.count(metrics.OutcomeUnmatched)
	fields := []zap.Field{zap.String("node_url", echo.Cut(msg.NodeURL)), zap.String("workflow", echo.Cut(msg.Workflow)), zap.String("node", echo.Cut(msg.Node))}
	if a.cfg.WorkflowNodeRuns.Unmatched != "fail" {
		log.Warn("workflow node run matches no action's workflowNode; left to another deployment (workflowNodeRuns.unmatched: leave)", fields...)
		return finished
	}
	log.Warn("workflow node run matches no action's workflowNode; completing it FAILED (workflowNodeRuns.unmatched: fail)", fields...)
	r.msg, r.log = msg, log
	return a.closeUnrun(r, reporter.Outcome{Label: "no command for this node",
		Summary: "port-runner: no action of this deployment matches this workflow node run (workflowNodeRuns.unmatched: fail)"})
}

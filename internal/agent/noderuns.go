package agent

import (
	"context"
	"fmt"
	"sort"

	"github.com/itchyny/gojq"

	"github.com/port-runner/port-runner/internal/portapi"
	"github.com/port-runner/port-runner/internal/runmsg"
	"github.com/port-runner/port-runner/reporter"
)

// target is where one run is reported: an action run through Port's action-run API (the
// portapi client itself), a workflow node run through its workflow API (portapi.NodeRuns).
type target interface {
	reporter.API
	GetRun(ctx context.Context, runID string) (portapi.Run, error)
}

func (a *Agent) target(run runmsg.Run) target {
	if runmsg.IsWorkflowNodeRun(run.ID) {
		return portapi.NodeRuns{C: a.api}
	}
	return a.api
}

// nodeMatcher is one action's workflowNode: the node runs it takes.
type nodeMatcher struct {
	workflow, node string
	selector       *gojq.Code
}

func newNodeMatcher(name string, workflow, node, selector string) (*nodeMatcher, error) {
	m := &nodeMatcher{workflow: workflow, node: node}
	if selector != "" {
		q, err := gojq.Parse(selector)
		if err != nil {
			return nil, fmt.Errorf("actions.%s.workflowNode.selector: parse jq %q: %w", name, selector, err)
		}
		if m.selector, err = gojq.Compile(q); err != nil {
			return nil, fmt.Errorf("actions.%s.workflowNode.selector: compile jq %q: %w", name, selector, err)
		}
	}
	return m, nil
}

// matches: every field given must fit; the selector reads the message as the command sees it.
func (m *nodeMatcher) matches(run runmsg.Run) bool {
	if m.workflow != "" && m.workflow != run.Workflow || m.node != "" && m.node != run.Node {
		return false
	}
	if m.selector == nil {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), runmsg.SelectorTimeout) // a selector that never ends must not stall a partition
	defer cancel()
	v, ok := m.selector.RunWithContext(ctx, run.Context["message"]).Next()
	return ok && v == true
}

// lookupAction finds a run's configured action. A workflow node run goes to the first
// action, by name, whose workflowNode matches it, and takes that action's name. Node runs
// of actions with no workflowNode, and action runs of them, are not mixed up: an action
// entry with a workflowNode still serves action runs of its name too.
func (a *Agent) lookupAction(run *runmsg.Run) (*action, bool) {
	if !runmsg.IsWorkflowNodeRun(run.ID) {
		act, ok := a.actions[run.Action]
		return act, ok
	}
	names := make([]string, 0, len(a.actions))
	for n, act := range a.actions {
		if act.node != nil {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		if a.actions[n].node.matches(*run) {
			run.Action = n
			run.Context["action"] = n // Decode made this map for this run alone
			return a.actions[n], true
		}
	}
	return nil, false
}

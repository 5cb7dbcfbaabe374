package agent

import (
	"context"

	"github.com/itchyny/gojq"

	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/portapi"
	"github.com/port-runner/port-runner/internal/runmsg"
	"github.com/port-runner/port-runner/reporter"
)

// target is where one run is reported: an action run through Port's action-run API (the
// portapi client itself), a workflow node run through its workflow API (portapi.NodeRuns).
type target interface {
	reporter.API
	checker
	GetRun(ctx context.Context, runID string) (portapi.Run, error)
	WatchRun(ctx context.Context, runID string) (portapi.Run, error)
}

func (a *Agent) target(run runmsg.Run) target {
	if runmsg.IsWorkflowNodeRun(run.ID) {
		return portapi.NodeRuns{C: a.api}
	}
	return a.api
}

// nodeMatcher is one action's workflowNode: the node runs it takes.
type nodeMatcher struct {
	url, workflow, node string
	selector            *gojq.Code
}

func newNodeMatcher(name string, wn config.WorkflowNode) (*nodeMatcher, error) {
	m := &nodeMatcher{url: wn.URL, workflow: wn.Workflow, node: wn.Node}
	if wn.Selector != "" {
		code, err := compileJQ("actions."+name+".workflowNode.selector", wn.Selector)
		if err != nil {
			return nil, err
		}
		m.selector = code
	}
	return m, nil
}

// matches: every field given must fit; the selector reads the message as the command sees it.
func (m *nodeMatcher) matches(run runmsg.Run) bool {
	if m.url != "" && m.url != run.NodeURL || m.workflow != "" && m.workflow != run.Workflow || m.node != "" && m.node != run.Node {
		return false
	}
	if m.selector == nil {
		return true
	}
	ok, _ := isTrue(m.selector, run.Context["message"])
	return ok
}

package emulator

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/port-runner/port-runner/internal/runmsg"
)

// Workflow runs and their node runs. A workflow that reaches a webhook node configured with
// agent: true hands the node run to the agent on the runs topic. The message is the one
// Port's own agent reads (port-agent's fixtures): context.runId "wfnr_..." and the node's
// config as payload.action.invocationMethod; the node's body travelling inside it is this
// project's reading (README "Workflow node runs"). It names neither workflow nor node.

// CreateNodeRunRequest is the body of the emulator's POST /v1/workflows/{w}/nodes/{n}/runs:
// the node's configured body, and its url ("": NodeURL of the workflow and node).
type CreateNodeRunRequest struct {
	Payload any    `json:"payload"`
	URL     string `json:"url,omitempty"`
}

// NodeURL is the url the emulator gives a webhook node unless told another: what an
// action's workflowNode.url matches.
func NodeURL(workflow, node string) string {
	return "https://port-runner.invalid/workflows/" + url.PathEscape(workflow) + "/nodes/" + url.PathEscape(node)
}

// WorkflowRunState is a snapshot of one workflow run: IN_PROGRESS, CANCELLING (cancelled
// without force: its running nodes finish first) or COMPLETED with a Result (SUCCESS, FAILED,
// CANCELLED).
type WorkflowRunState struct {
	ID, Workflow, Status, Result string
	NodeRuns                     []string
}

const statusCancelling = "CANCELLING"

type nodeMessage struct {
	Headers map[string]any `json:"headers"` // empty; runmsg.Sign fills it
	Payload nodePayload    `json:"payload"`
	Context nodeContext    `json:"context"`
}

type nodePayload struct {
	Action struct {
		InvocationMethod nodeInvocation `json:"invocationMethod"`
	} `json:"action"`
}

type nodeInvocation struct {
	Type   string `json:"type"`
	URL    string `json:"url"`
	Method string `json:"method"`
	Agent  bool   `json:"agent"`
	Body   any    `json:"body,omitempty"`
}

type nodeContext struct {
	RunID string `json:"runId"`
}

// CreateNodeRun starts a workflow run of workflow whose node node hands the agent a node run
// (IN_PROGRESS), and produces its signed message; with DeliveryPolling it holds the node run
// for the agents' claims instead (HoldNodeRun).
func (e *Emulator) CreateNodeRun(ctx context.Context, workflow, node string, in CreateNodeRunRequest) (RunState, error) {
	if e.Delivery() == DeliveryPolling {
		return e.HoldNodeRun(workflow, node, in)
	}
	return e.publish(ctx, "node run", func() (RunState, []byte, error) { return e.PrepareNodeRun(workflow, node, in) })
}

// PrepareNodeRun is CreateNodeRun without producing: it returns the signed message.
func (e *Emulator) PrepareNodeRun(workflow, node string, in CreateNodeRunRequest) (RunState, []byte, error) {
	if workflow == "" || node == "" {
		return RunState{}, nil, errf(http.StatusUnprocessableEntity, "invalid_request", "workflow and node identifiers are required")
	}
	if in.URL == "" {
		in.URL = NodeURL(workflow, node)
	}
	now := e.opts.Now()
	id := "wfnr_" + randomID(16)
	m := nodeMessage{Headers: map[string]any{}, Context: nodeContext{RunID: id}}
	m.Payload.Action.InvocationMethod = nodeInvocation{Type: runmsg.InvocationWebhook, URL: in.URL, Method: http.MethodPost, Agent: true, Body: in.Payload}
	raw, err := encodeMessage(m)
	if err != nil {
		return RunState{}, nil, errf(http.StatusUnprocessableEntity, "invalid_request", "payload: %v", err)
	}
	value, err := runmsg.Sign(e.opts.ClientSecret, now.Unix(), raw)
	if err != nil {
		return RunState{}, nil, &apiError{Status: http.StatusInternalServerError, Code: "internal_error", Message: err.Error(), Err: err}
	}
	e.mu.Lock()
	e.insertNodeRunLocked(id, workflow, node)
	e.mu.Unlock()
	run, _ := e.Run(id)
	return run, value, nil
}

// insertNodeRunLocked adds an IN_PROGRESS node run, in a workflow run of its own.
func (e *Emulator) insertNodeRunLocked(id, workflow, node string) {
	wfr := "wfr_" + randomID(16)
	e.workflowRuns[wfr] = &WorkflowRunState{ID: wfr, Workflow: workflow, Status: statusInProgress, NodeRuns: []string{id}}
	e.insertLocked(&RunState{ID: id, NodeRun: true, Workflow: workflow, Node: node, WorkflowRunID: wfr, Properties: map[string]any{}})
}

func (e *Emulator) handleCreateNodeRun(r *http.Request, body []byte, _ time.Time) (int, any, error) {
	var in CreateNodeRunRequest
	if err := decode(body, &in, true); err != nil {
		return 0, nil, err
	}
	run, err := e.CreateNodeRun(r.Context(), r.PathValue("workflow"), r.PathValue("node"), in)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, map[string]any{"ok": true, "nodeRun": toWireNode(&run)}, nil
}

// completeNodeLocked ends a node run with result, and its workflow run once every node run
// of it has ended.
func (e *Emulator) completeNodeLocked(run *RunState, result string, now time.Time) {
	run.Result = result
	status := statusFailure
	if result == resultSuccess {
		status = statusSuccess
	}
	e.terminateLocked(run, status, now)
	wf := e.workflowRuns[run.WorkflowRunID]
	if wf == nil || wf.Status == nodeCompleted {
		return
	}
	outcome := resultSuccess
	for _, id := range wf.NodeRuns {
		nr := e.runs[id]
		if !terminal(nr.Status) {
			return
		}
		if nr.Result != resultSuccess {
			outcome = resultFailed
		}
	}
	if wf.Status == statusCancelling {
		outcome = resultCanceled
	}
	wf.Status, wf.Result = nodeCompleted, outcome
}

// CancelWorkflowRun cancels a workflow run as POST /v1/workflows/runs/{id}/cancel does:
// without force it is CANCELLING until its running nodes finish; with force its running
// node runs are failed at once ("immediately fail all running nodes", Port's docs) and the
// workflow run is COMPLETED, CANCELLED.
func (e *Emulator) CancelWorkflowRun(id string, force bool) (WorkflowRunState, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	wf := e.workflowRuns[id]
	switch {
	case wf == nil:
		return WorkflowRunState{}, errf(http.StatusNotFound, "not_found", "workflow run %q not found", id)
	case wf.Status == nodeCompleted:
		return WorkflowRunState{}, errf(http.StatusUnprocessableEntity, "invalid_request", "workflow run %s is already completed", id)
	}
	wf.Status = statusCancelling
	if force {
		now := e.opts.Now()
		for _, nid := range wf.NodeRuns {
			if nr := e.runs[nid]; !terminal(nr.Status) {
				e.completeNodeLocked(nr, resultFailed, now)
				nr.UpdatedAt = now
			}
		}
		wf.Status, wf.Result = nodeCompleted, resultCanceled
	}
	e.notifyLocked()
	return wf.clone(), nil
}

func (w *WorkflowRunState) clone() WorkflowRunState {
	c := *w
	c.NodeRuns = slices.Clone(w.NodeRuns)
	return c
}

// WorkflowRun returns a snapshot of the workflow run with that id.
func (e *Emulator) WorkflowRun(id string) (WorkflowRunState, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	wf, ok := e.workflowRuns[id]
	if !ok {
		return WorkflowRunState{}, false
	}
	return wf.clone(), true
}

func (e *Emulator) handleCancelWorkflowRun(r *http.Request, body []byte, _ time.Time) (int, any, error) {
	// Port's docs name force without saying where it goes: the query and the body both work.
	var in struct {
		Force bool `json:"force"`
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := decode(body, &in, true); err != nil {
			return 0, nil, err
		}
	}
	force := in.Force || r.URL.Query().Get("force") == "true"
	if _, err := e.CancelWorkflowRun(r.PathValue("id"), force); err != nil {
		return 0, nil, err
	}
	return e.handleGetWorkflowRun(r, nil, time.Time{})
}

func (e *Emulator) handleGetWorkflowRun(r *http.Request, _ []byte, _ time.Time) (int, any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	wf := e.workflowRuns[r.PathValue("id")]
	if wf == nil {
		return 0, nil, errf(http.StatusNotFound, "not_found", "workflow run %q not found", r.PathValue("id"))
	}
	nodes := make([]wireNodeRun, 0, len(wf.NodeRuns))
	for _, id := range wf.NodeRuns {
		nodes = append(nodes, toWireNode(e.runs[id]))
	}
	var result *string
	if wf.Result != "" {
		res := wf.Result
		result = &res
	}
	return http.StatusOK, map[string]any{"ok": true, "workflowRun": map[string]any{
		"identifier": wf.ID, "workflow": wireRef{wf.Workflow, wf.Workflow}, "status": wf.Status,
		"result": result, "nodeRuns": nodes,
	}}, nil
}

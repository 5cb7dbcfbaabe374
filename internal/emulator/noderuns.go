package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/port-runner/port-runner/internal/runmsg"
)

// Routes beyond action runs: workflow node runs, synchronous responses, Kafka credentials.
// POST /v1/workflows/{workflow}/nodes/{node}/runs is the emulator's own: it stands in for
// a workflow reaching its Kafka node, which in Port no API call does directly.
func (e *Emulator) nodeRunRoutes() {
	e.handle("GET /v1/workflows/nodes/runs/{id}", true, e.handleGetNodeRun)
	e.handle("PATCH /v1/workflows/nodes/runs/{id}", true, e.handlePatchNodeRun)
	e.handle("POST /v1/workflows/nodes/runs/{id}/logs", true, e.handleNodeRunLogs)
	e.handle("POST /v1/workflows/{workflow}/nodes/{node}/runs", true, e.handleCreateNodeRun)
	e.handle("PATCH /v1/actions/runs/{id}/response", true, e.handleRunResponse)
	e.handle("GET /v1/kafka-credentials", true, e.handleKafkaCredentials)
}

const (
	nodeCompleted  = "COMPLETED"
	resultSuccess  = "SUCCESS"
	resultFailed   = "FAILED"
	resultCanceled = "CANCELLED"
)

// CreateNodeRunRequest is the body of the emulator's POST /v1/workflows/{w}/nodes/{n}/runs:
// the payload the workflow's Kafka node is configured to publish (an object or an array).
type CreateNodeRunRequest struct {
	Payload any `json:"payload"`
}

// The message a Kafka node publishes: the configured payload wrapped with the node run's
// context, signed like an action run's message. Port's docs say only "the payload you
// configured, wrapped with additional metadata about the workflow run"; this layout keeps
// the action runs' .context.runId, which Port's own agent reads for wfnr_ ids too.
type nodeMessage struct {
	Context nodeContext    `json:"context"`
	Payload any            `json:"payload"`
	Headers map[string]any `json:"headers"`
}

type nodeContext struct {
	RunID         string  `json:"runId"`
	WorkflowRunID string  `json:"workflowRunId"`
	Workflow      wireRef `json:"workflow"`
	Node          wireRef `json:"node"`
}

// CreateNodeRun creates an IN_PROGRESS workflow node run and produces its signed message.
func (e *Emulator) CreateNodeRun(ctx context.Context, workflow, node string, payload any) (RunState, error) {
	if e.Delivery() == DeliveryPolling {
		return e.HoldNodeRun(workflow, node, payload)
	}
	if e.opts.Produce == nil {
		return RunState{}, &apiError{Status: http.StatusServiceUnavailable, Code: "internal_error", Message: errNoProducer.Error(), Err: errNoProducer}
	}
	run, value, err := e.PrepareNodeRun(workflow, node, payload)
	if err != nil {
		return RunState{}, err
	}
	if err := e.opts.Produce(ctx, e.opts.Topic, []byte(run.ID), value); err != nil {
		e.removeRun(run.ID)
		return RunState{}, &apiError{Status: http.StatusServiceUnavailable, Code: "internal_error",
			Message: "could not publish the node run to Kafka: " + err.Error(), Err: err}
	}
	run, _ = e.Run(run.ID)
	return run, nil
}

// PrepareNodeRun is CreateNodeRun without producing: it returns the signed message.
func (e *Emulator) PrepareNodeRun(workflow, node string, payload any) (RunState, []byte, error) {
	if workflow == "" || node == "" {
		return RunState{}, nil, errf(http.StatusUnprocessableEntity, "invalid_request", "workflow and node identifiers are required")
	}
	if payload == nil {
		payload = map[string]any{}
	}
	now := e.opts.Now()
	id := "wfnr_" + randomID(16)
	m := nodeMessage{
		Context: nodeContext{RunID: id, WorkflowRunID: "wfr_" + randomID(16),
			Workflow: wireRef{workflow, workflow}, Node: wireRef{node, node}},
		Payload: payload,
		Headers: map[string]any{},
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return RunState{}, nil, errf(http.StatusUnprocessableEntity, "invalid_request", "payload: %v", err)
	}
	value, err := runmsg.Sign(e.opts.ClientSecret, now.Unix(), bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	if err != nil {
		return RunState{}, nil, &apiError{Status: http.StatusInternalServerError, Code: "internal_error", Message: err.Error(), Err: err}
	}
	e.mu.Lock()
	e.insertLocked(&RunState{ID: id, NodeRun: true, Workflow: workflow, Node: node, Properties: map[string]any{}})
	e.mu.Unlock()
	run, _ := e.Run(id)
	return run, value, nil
}

func (e *Emulator) removeRun(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.runs, id)
	e.order = slices.DeleteFunc(e.order, func(s string) bool { return s == id })
	e.notifyLocked()
}

func (e *Emulator) handleCreateNodeRun(r *http.Request, body []byte, _ time.Time) (int, any, error) {
	var in CreateNodeRunRequest
	if err := decode(body, &in, true); err != nil {
		return 0, nil, err
	}
	run, err := e.CreateNodeRun(r.Context(), r.PathValue("workflow"), r.PathValue("node"), in.Payload)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, map[string]any{"ok": true, "nodeRun": toWireNode(&run)}, nil
}

// nodeRunLocked finds a workflow node run; an action run's id is not one.
func (e *Emulator) nodeRunLocked(id string) (*RunState, error) {
	run, ok := e.runs[id]
	if !ok || !run.NodeRun {
		return nil, errf(http.StatusNotFound, "not_found", "workflow node run %q not found", id)
	}
	return run, nil
}

// openNodeRunLocked is openRunLocked for node runs: a completed one refuses every change.
func (e *Emulator) openNodeRunLocked(id string, completing bool) (*RunState, error) {
	run, err := e.nodeRunLocked(id)
	if err != nil {
		return nil, err
	}
	if terminal(run.Status) {
		return nil, e.rejectLocked(run, completing)
	}
	return run, nil
}

func (e *Emulator) handleGetNodeRun(r *http.Request, _ []byte, _ time.Time) (int, any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	run, err := e.nodeRunLocked(r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"ok": true, "nodeRun": toWireNode(run)}, nil
}

func (e *Emulator) handlePatchNodeRun(r *http.Request, body []byte, now time.Time) (int, any, error) {
	var in struct {
		Status *string         `json:"status"`
		Result *string         `json:"result"`
		Output *map[string]any `json:"output"`
		Logs   []nodeLogIn     `json:"logs"`
	}
	if err := decode(body, &in, true); err != nil {
		return 0, nil, err
	}
	if in.Status != nil && *in.Status != statusInProgress && *in.Status != nodeCompleted {
		return 0, nil, errf(http.StatusUnprocessableEntity, "invalid_request", "status must be IN_PROGRESS or COMPLETED, got %q", *in.Status)
	}
	completing := in.Status != nil && *in.Status == nodeCompleted
	if completing && (in.Result == nil || !oneOf(*in.Result, resultSuccess, resultFailed, resultCanceled)) {
		return 0, nil, errf(http.StatusUnprocessableEntity, "invalid_request", "a COMPLETED node run needs result SUCCESS, FAILED or CANCELLED")
	}
	if err := checkNodeLogs(in.Logs); err != nil {
		return 0, nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	run, err := e.openNodeRunLocked(r.PathValue("id"), completing)
	if err != nil {
		return 0, nil, err
	}
	run.Logs = appendNodeLogs(run.Logs, in.Logs, now)
	if in.Output != nil {
		run.Output = *in.Output
	}
	if completing {
		run.Result = *in.Result
		status := statusFailure
		if run.Result == resultSuccess {
			status = statusSuccess
		}
		e.terminateLocked(run, status, now)
	}
	run.UpdatedAt = now
	e.notifyLocked()
	return http.StatusOK, map[string]any{"ok": true, "nodeRun": toWireNode(run)}, nil
}

type nodeLogIn struct {
	Level   string `json:"level"`
	Message string `json:"message"`
}

func checkNodeLogs(logs []nodeLogIn) error {
	for i, l := range logs {
		if !oneOf(l.Level, "DEBUG", "INFO", "WARN", "ERROR") {
			return errf(http.StatusUnprocessableEntity, "invalid_request", "logs[%d].level must be DEBUG, INFO, WARN or ERROR, got %q", i, l.Level)
		}
	}
	return nil
}

func appendNodeLogs(dst []LogEntry, logs []nodeLogIn, now time.Time) []LogEntry {
	for _, l := range logs {
		dst = append(dst, LogEntry{Level: l.Level, Message: l.Message, CreatedAt: now})
	}
	return dst
}

func (e *Emulator) handleNodeRunLogs(r *http.Request, body []byte, now time.Time) (int, any, error) {
	var in struct {
		Logs []nodeLogIn `json:"logs"`
	}
	if err := decode(body, &in, true); err != nil {
		return 0, nil, err
	}
	if len(in.Logs) == 0 {
		return 0, nil, errf(http.StatusUnprocessableEntity, "invalid_request", "body must have a non-empty 'logs' array")
	}
	if err := checkNodeLogs(in.Logs); err != nil {
		return 0, nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	run, err := e.openNodeRunLocked(r.PathValue("id"), false)
	if err != nil {
		return 0, nil, err
	}
	run.Logs = appendNodeLogs(run.Logs, in.Logs, now)
	run.UpdatedAt = now
	e.notifyLocked()
	return http.StatusOK, map[string]any{"ok": true}, nil
}

type wireNodeRun struct {
	Identifier  string         `json:"identifier"`
	Node        wireRef        `json:"node"`
	Workflow    wireRef        `json:"workflow"`
	Status      string         `json:"status"`
	Result      *string        `json:"result"`
	Output      map[string]any `json:"output"`
	NodeRunLogs []LogEntry     `json:"nodeRunLogs"`
	CreatedAt   string         `json:"createdAt"`
	UpdatedAt   string         `json:"updatedAt"`
	CompletedAt *string        `json:"completedAt"`
}

func toWireNode(r *RunState) wireNodeRun {
	w := wireNodeRun{
		Identifier: r.ID, Node: wireRef{r.Node, r.Node}, Workflow: wireRef{r.Workflow, r.Workflow},
		Status: statusInProgress, Output: r.Output, NodeRunLogs: slices.Clone(r.Logs),
		CreatedAt: fmtTime(r.CreatedAt), UpdatedAt: fmtTime(r.UpdatedAt),
	}
	if terminal(r.Status) {
		w.Status = nodeCompleted
		res := r.Result
		w.Result = &res
	}
	if r.EndedAt != nil {
		s := fmtTime(*r.EndedAt)
		w.CompletedAt = &s
	}
	if w.Output == nil {
		w.Output = map[string]any{}
	}
	if w.NodeRunLogs == nil {
		w.NodeRunLogs = []LogEntry{}
	}
	return w
}

func oneOf(v string, allowed ...string) bool { return slices.Contains(allowed, v) }

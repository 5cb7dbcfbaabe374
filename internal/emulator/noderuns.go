package emulator

import (
	"net/http"
	"slices"
	"time"
)

// Routes beyond action runs: workflow node and workflow runs, the list of action runs,
// synchronous responses, Kafka credentials. POST /v1/workflows/{workflow}/nodes/{node}/runs
// is the emulator's own: it stands in for a workflow reaching an agent's webhook node, which
// in Port no API call does directly (workflows.go).
func (e *Emulator) nodeRunRoutes() {
	e.handle("GET /v1/workflows/nodes/runs/{id}", true, e.handleGetNodeRun)
	e.handle("PATCH /v1/workflows/nodes/runs/{id}", true, e.handlePatchNodeRun)
	e.handle("POST /v1/workflows/nodes/runs/{id}/logs", true, e.handleNodeRunLogs)
	e.handle("POST /v1/workflows/{workflow}/nodes/{node}/runs", true, e.handleCreateNodeRun)
	e.handle("GET /v1/workflows/runs/{id}", true, e.handleGetWorkflowRun)
	e.handle("POST /v1/workflows/runs/{id}/cancel", true, e.handleCancelWorkflowRun)
	e.handle("GET /v1/actions/runs", true, e.handleListRuns)
	e.handle("PATCH /v1/actions/runs/{id}/response", true, e.handleRunResponse)
	e.handle("GET /v1/kafka-credentials", true, e.handleKafkaCredentials)
}

const (
	nodeCompleted  = "COMPLETED"
	resultSuccess  = "SUCCESS"
	resultFailed   = "FAILED"
	resultCanceled = "CANCELLED"
)

func (e *Emulator) removeRun(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r, ok := e.runs[id]; ok && r.WorkflowRunID != "" {
		delete(e.workflowRuns, r.WorkflowRunID)
	}
	delete(e.runs, id)
	e.order = slices.DeleteFunc(e.order, func(s string) bool { return s == id })
	e.notifyLocked()
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
		e.completeNodeLocked(run, *in.Result, now)
	}
	run.UpdatedAt = now
	e.notifyLocked()
	return http.StatusOK, map[string]any{"ok": true, "nodeRun": toWireNode(run)}, nil
}

// nodeLogIn is one log entry: {"level","message"} (the logs route, and Port's agents
// today), or in a PATCH also the older {"logLevel","log","tags"} its schema still takes.
type nodeLogIn struct {
	Level    string         `json:"level"`
	Message  string         `json:"message"`
	LogLevel string         `json:"logLevel"`
	Log      string         `json:"log"`
	Tags     map[string]any `json:"tags"`
}

func checkNodeLogs(logs []nodeLogIn) error {
	for i := range logs {
		l := &logs[i]
		if l.Level == "" && l.Message == "" {
			l.Level, l.Message = l.LogLevel, l.Log
		}
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
	run, err := e.nodeRunLocked(r.PathValue("id"))
	if err == nil && terminal(run.Status) && !e.opts.LogsAfterTermination {
		err = e.rejectLocked(run, false)
	}
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

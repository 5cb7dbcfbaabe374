package emulator

import (
	"encoding/json"
	"net/http"
	"time"
)

func (e *Emulator) handleGetRun(r *http.Request, _ []byte, _ time.Time) (int, any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	run, err := e.lookupLocked(r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"ok": true, "run": toWire(run)}, nil
}

func (e *Emulator) handleGetLogs(r *http.Request, _ []byte, _ time.Time) (int, any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	run, err := e.lookupLocked(r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	logs := make([]wireLog, 0, len(run.Logs))
	for _, l := range run.Logs {
		logs = append(logs, wireLog{l.Message, l.TerminationStatus, l.StatusLabel, fmtTime(l.CreatedAt)})
	}
	return http.StatusOK, map[string]any{"ok": true, "runLogs": logs}, nil
}

func (e *Emulator) handlePatchRun(r *http.Request, body []byte, now time.Time) (int, any, error) {
	var in struct {
		Status        *string   `json:"status"`
		StatusLabel   *string   `json:"statusLabel"`
		Link          *[]string `json:"link"`
		Summary       *string   `json:"summary"`
		ExternalRunID *string   `json:"externalRunId"`
	}
	if err := decode(body, &in, true); err != nil {
		return 0, nil, err
	}
	if in.Status != nil && !terminal(*in.Status) {
		return 0, nil, errf(http.StatusUnprocessableEntity, "invalid_request", "status must be SUCCESS or FAILURE, got %q", *in.Status)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	run, err := e.openRunLocked(r.PathValue("id"), in.Status != nil)
	if err != nil {
		return 0, nil, err
	}
	// Port's rule: every key present overrides the previous value.
	if in.StatusLabel != nil {
		run.StatusLabel = *in.StatusLabel
	}
	if in.Link != nil {
		run.Link = append([]string{}, (*in.Link)...)
	}
	if in.Summary != nil {
		run.Summary = *in.Summary
	}
	if in.ExternalRunID != nil {
		run.ExternalRunID = *in.ExternalRunID
	}
	if in.Status != nil {
		e.terminateLocked(run, *in.Status, now)
	}
	run.UpdatedAt = now
	e.notifyLocked()
	return http.StatusOK, map[string]any{"ok": true, "run": toWire(run)}, nil
}

func (e *Emulator) handlePostLogs(r *http.Request, body []byte, now time.Time) (int, any, error) {
	var in struct {
		Message           json.RawMessage `json:"message"`
		TerminationStatus *string         `json:"terminationStatus"`
		StatusLabel       *string         `json:"statusLabel"`
	}
	if err := decode(body, &in, true); err != nil {
		return 0, nil, err
	}
	var msg string
	if len(in.Message) == 0 || in.Message[0] != '"' || json.Unmarshal(in.Message, &msg) != nil {
		return 0, nil, errf(http.StatusUnprocessableEntity, "invalid_request", "body must have required property 'message' of type string")
	}
	if in.TerminationStatus != nil && !terminal(*in.TerminationStatus) {
		return 0, nil, errf(http.StatusUnprocessableEntity, "invalid_request", "terminationStatus must be SUCCESS or FAILURE, got %q", *in.TerminationStatus)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if in.TerminationStatus != nil && len(e.refuseClosings) > 0 {
		code := e.refuseClosings[0]
		e.refuseClosings = e.refuseClosings[1:]
		return 0, nil, errf(code, "invalid_request", "injected refusal of a closing request (emulator RefuseClosings)")
	}
	run, err := e.logTargetLocked(r.PathValue("id"), in.TerminationStatus != nil)
	if err != nil {
		return 0, nil, err
	}
	entry := LogEntry{Message: msg, CreatedAt: now}
	if in.StatusLabel != nil {
		entry.StatusLabel = *in.StatusLabel
		run.StatusLabel = *in.StatusLabel
	}
	if in.TerminationStatus != nil {
		entry.TerminationStatus = *in.TerminationStatus
		e.terminateLocked(run, *in.TerminationStatus, now)
	}
	run.Logs = append(run.Logs, entry)
	run.UpdatedAt = now
	e.notifyLocked()
	return http.StatusOK, map[string]any{"ok": true}, nil
}

func (e *Emulator) handleCreateRun(r *http.Request, body []byte, _ time.Time) (int, any, error) {
	var in CreateRunRequest
	if err := decode(body, &in, true); err != nil {
		return 0, nil, err
	}
	run, err := e.CreateRun(r.Context(), r.PathValue("action"), in)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, map[string]any{"ok": true, "run": toWire(&run)}, nil
}

func (e *Emulator) lookupLocked(id string) (*RunState, error) {
	run, ok := e.runs[id]
	if !ok || run.NodeRun { // a workflow node run is not an action run
		return nil, errf(http.StatusNotFound, "not_found", "run %q not found", id)
	}
	return run, nil
}

// terminateLocked ends the run: after this Port refuses every change.
func (e *Emulator) terminateLocked(run *RunState, status string, now time.Time) {
	run.Status = status
	run.Terminations++
	t := now
	run.EndedAt = &t
}

// rejectLocked answers a change to an ended run, counting a repeated
// termination so tests can catch agents that close a run twice.
// openRunLocked finds a run that may still change: Port refuses every change to a
// terminated run, and counts a repeated termination.
func (e *Emulator) openRunLocked(id string, terminating bool) (*RunState, error) {
	run, err := e.lookupLocked(id)
	if err != nil {
		return nil, err
	}
	if terminal(run.Status) {
		return nil, e.rejectLocked(run, terminating)
	}
	return run, nil
}

// logTargetLocked is the run a log goes to: an open one, or with LogsAfterTermination a
// terminated one too, for lines without a termination.
func (e *Emulator) logTargetLocked(id string, terminating bool) (*RunState, error) {
	if e.opts.LogsAfterTermination && !terminating {
		return e.lookupLocked(id)
	}
	return e.openRunLocked(id, terminating)
}

func (e *Emulator) rejectLocked(run *RunState, termination bool) error {
	if termination {
		run.RejectedTerminations++
		e.notifyLocked()
	}
	return errf(http.StatusConflict, "run_already_terminated", "run %s already ended with status %s and can no longer be modified", run.ID, run.Status)
}

// wireRun is a run as GET /v1/actions/runs/{id} returns it.
type wireRun struct {
	ID            string         `json:"id"`
	Status        string         `json:"status"`
	StatusLabel   string         `json:"statusLabel"`
	Blueprint     wireRef        `json:"blueprint"`
	Entity        *wireRef       `json:"entity,omitempty"`
	Action        string         `json:"action"`
	EndedAt       *string        `json:"endedAt"`
	Source        string         `json:"source"`
	Properties    map[string]any `json:"properties"`
	Link          []string       `json:"link"`
	Summary       string         `json:"summary"`
	ExternalRunID string         `json:"externalRunId"`
	// PendingExecution: the run waits for an agent to acknowledge it (Port's run schema).
	PendingExecution bool   `json:"pendingExecution"`
	CreatedAt        string `json:"createdAt"`
	UpdatedAt        string `json:"updatedAt"`
}

type wireRef struct {
	Identifier string `json:"identifier"`
	Title      string `json:"title"`
}

type wireLog struct {
	Message           string `json:"message"`
	TerminationStatus string `json:"terminationStatus,omitempty"`
	StatusLabel       string `json:"statusLabel,omitempty"`
	CreatedAt         string `json:"createdAt"`
}

func toWire(r *RunState) wireRun {
	w := wireRun{
		ID: r.ID, Status: r.Status, StatusLabel: r.StatusLabel,
		Blueprint: wireRef{r.Blueprint, r.Blueprint}, Action: r.Action, Source: "API",
		Properties: r.Properties, Link: r.Link, Summary: r.Summary, ExternalRunID: r.ExternalRunID,
		PendingExecution: r.Pending && !r.Acked,
		CreatedAt:        fmtTime(r.CreatedAt), UpdatedAt: fmtTime(r.UpdatedAt),
	}
	if r.Entity != "" {
		w.Entity = &wireRef{r.Entity, r.Entity}
	}
	if r.EndedAt != nil {
		s := fmtTime(*r.EndedAt)
		w.EndedAt = &s
	}
	if w.Properties == nil {
		w.Properties = map[string]any{}
	}
	if w.Link == nil {
		w.Link = []string{}
	}
	return w
}

// handleRunResponse takes a synchronous run's response; like every change, only while the
// run is open, so an agent that closes first loses it (and a test sees the 409).
func (e *Emulator) handleRunResponse(r *http.Request, body []byte, now time.Time) (int, any, error) {
	var in struct {
		Response json.RawMessage `json:"response"`
	}
	if err := decode(body, &in, true); err != nil {
		return 0, nil, err
	}
	if len(in.Response) == 0 {
		return 0, nil, errf(http.StatusUnprocessableEntity, "invalid_request", "body must have required property 'response'")
	}
	var v any
	if err := json.Unmarshal(in.Response, &v); err != nil {
		return 0, nil, errf(http.StatusUnprocessableEntity, "invalid_request", "response: %v", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	run, err := e.openRunLocked(r.PathValue("id"), false)
	if err != nil {
		return 0, nil, err
	}
	run.Response = v
	run.UpdatedAt = now
	e.notifyLocked()
	return http.StatusOK, map[string]any{"ok": true}, nil
}

func (e *Emulator) handleKafkaCredentials(*http.Request, []byte, time.Time) (int, any, error) {
	kc := e.opts.KafkaCredentials
	if kc == nil {
		return 0, nil, errf(http.StatusNotFound, "not_found", "this organization has no Kafka credentials")
	}
	return http.StatusOK, map[string]any{"ok": true, "credentials": map[string]any{
		"brokers": kc.Brokers, "username": kc.Username, "password": kc.Password,
	}}, nil
}

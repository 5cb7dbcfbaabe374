package emulator

import (
	"encoding/json"
	"net/http"
	"time"
)

// HoldRun creates the IN_PROGRESS run as CreateRun does and holds it pending for the
// agent's claims (delivery "polling") instead of producing its message.
func (e *Emulator) HoldRun(action string, req CreateRunRequest) (RunState, error) {
	if action == "" {
		return RunState{}, errf(http.StatusUnprocessableEntity, "invalid_request", "action identifier is required")
	}
	bp, props := runInputs(req)
	now := e.opts.Now()
	id := "r_" + randomID(16)
	payload, err := e.claimPayload(id, action, bp, req.Entity, props, now)
	if err != nil {
		return RunState{}, &apiError{Status: http.StatusInternalServerError, Code: "internal_error", Message: err.Error(), Err: err}
	}
	e.mu.Lock()
	e.holdLocked(&RunState{ID: id, Action: action, Blueprint: bp, Entity: req.Entity, Properties: e.shownProps(action, props)}, payload)
	e.mu.Unlock()
	run, _ := e.Run(id)
	return run, nil
}

// claimPayload is a held run's payload as the claim answers it: the execution agent's
// invocation method (WEBHOOK, agent: true) and, as its body, the run message without
// signature headers (port-agent's fixture carries the message's context, payload and
// trigger there).
func (e *Emulator) claimPayload(id, action, blueprint, entity string, props map[string]any, now time.Time) ([]byte, error) {
	m, err := e.newMessage(id, action, blueprint, entity, props, now)
	if err != nil {
		return nil, err
	}
	m.Payload.Action.InvocationMethod.Type = "WEBHOOK"
	body, err := encodeMessage(m)
	if err != nil {
		return nil, err
	}
	return encodeMessage(claimedPayload{
		Type: "WEBHOOK", Agent: true, Synchronized: m.Payload.Action.InvocationMethod.Synchronized,
		Method: "POST", Headers: map[string]any{}, Body: body,
	})
}

type claimedPayload struct {
	Type         string          `json:"type"`
	URL          string          `json:"url"`
	Agent        bool            `json:"agent"`
	Synchronized bool            `json:"synchronized"`
	Method       string          `json:"method"`
	Headers      map[string]any  `json:"headers"`
	Body         json.RawMessage `json:"body"`
}

// HoldNodeRun creates an IN_PROGRESS node run, in a workflow run of its own, held for the
// agents' claims (delivery "polling"). Its config is the execution agent's webhook node as
// port-agent's fixtures show it (type, url, agent, method, headers) with the payload as the
// node's body; Port's claimed node run names neither its workflow nor its node, so neither
// does this one.
func (e *Emulator) HoldNodeRun(workflow, node string, in CreateNodeRunRequest) (RunState, error) {
	if workflow == "" || node == "" {
		return RunState{}, errf(http.StatusUnprocessableEntity, "invalid_request", "workflow and node identifiers are required")
	}
	if in.URL == "" {
		in.URL = NodeURL(workflow, node)
	}
	payload := in.Payload
	if payload == nil {
		payload = map[string]any{}
	}
	config, err := encodeMessage(map[string]any{
		"type": "WEBHOOK", "url": in.URL, "agent": true,
		"method": "POST", "headers": map[string]any{}, "body": payload,
	})
	if err != nil {
		return RunState{}, errf(http.StatusUnprocessableEntity, "invalid_request", "payload: %v", err)
	}
	id := "wfnr_" + randomID(16)
	e.mu.Lock()
	e.insertNodeRunLocked(id, workflow, node)
	r := e.runs[id]
	r.Pending, r.claimBody = true, config
	e.mu.Unlock()
	run, _ := e.Run(id)
	return run, nil
}

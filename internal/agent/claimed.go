package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	"github.com/port-runner/port-runner/internal/runmsg"
	"github.com/port-runner/port-runner/polling"
)

// decodeClaimed reads a claimed run as the run message port-agent builds of it
// (polling_to_webhook_processor): an action run's payload.body with the run's id as
// context.runId and its invocation method as payload.action.invocationMethod; a node
// run's config as the invocation method and context.nodeConfig.
func (a *Agent) decodeClaimed(c polling.Claim) (runmsg.Run, error) {
	msg, err := claimedMessage(c.Raw, c.Node)
	if err != nil {
		return runmsg.Run{}, err
	}
	run, err := a.claimedDecoder.Decode(msg)
	if err != nil {
		return runmsg.Run{}, err
	}
	if run.ID != c.ID {
		return runmsg.Run{}, fmt.Errorf("claimed run %q reads as run %q", c.ID, run.ID)
	}
	return run, nil
}

func claimedMessage(raw []byte, node bool) ([]byte, error) {
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("claimed run: %w", err)
	}
	if node {
		id, _ := obj["identifier"].(string)
		config, _ := obj["config"].(map[string]any)
		if id == "" {
			return nil, errors.New("claimed node run: no identifier")
		}
		invocation := maps.Clone(config)
		delete(invocation, "agent")
		return json.Marshal(map[string]any{
			"payload": map[string]any{"action": map[string]any{"invocationMethod": invocation}},
			"context": map[string]any{"runId": id, "nodeConfig": config},
		})
	}
	id, _ := obj["id"].(string)
	payload, _ := obj["payload"].(map[string]any)
	msg, _ := payload["body"].(map[string]any)
	if id == "" || msg == nil {
		return nil, errors.New("claimed run: no id or no payload.body")
	}
	invocation := maps.Clone(payload)
	delete(invocation, "body")
	delete(invocation, "agent")
	ctx, _ := msg["context"].(map[string]any)
	ctx = maps.Clone(ctx)
	if ctx == nil {
		ctx = map[string]any{}
	}
	ctx["runId"] = id
	msg["context"] = ctx
	p, _ := msg["payload"].(map[string]any)
	if p == nil {
		p = map[string]any{}
	}
	action, _ := p["action"].(map[string]any)
	action = maps.Clone(action)
	if action == nil {
		action = map[string]any{}
	}
	action["invocationMethod"] = invocation
	p["action"] = action
	msg["payload"] = p
	delete(msg, "headers")
	return json.Marshal(msg)
}

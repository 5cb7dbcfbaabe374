package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/port-runner/port-runner/internal/runmsg"
)

// The run message a new run gets: produced signed to the runs topic (buildMessage), or held
// as the body of a claimed run (hold.go).

// invocation is the invocation method an action's runs carry (Options.Invocations).
func (e *Emulator) invocation(action string) msgInvocation {
	sync := slices.Contains(e.opts.Synchronous, action)
	typ := e.opts.Invocations[action]
	if typ == "" && sync {
		typ = runmsg.InvocationWebhook
	}
	switch typ {
	case runmsg.InvocationWebhook:
		return msgInvocation{Type: typ, Agent: true, URL: "https://port-runner.invalid/actions/" + action, Synchronized: sync}
	case runmsg.InvocationGitLab:
		return msgInvocation{Type: typ, Agent: true, GroupName: "port-runner", ProjectName: action}
	}
	return msgInvocation{Type: runmsg.InvocationKafka}
}

func (e *Emulator) buildMessage(id, action, blueprint, entity string, props map[string]any, now time.Time) ([]byte, error) {
	m, err := e.newMessage(id, action, blueprint, entity, props, now)
	if err != nil {
		return nil, err
	}
	raw, err := encodeMessage(m)
	if err != nil {
		return nil, err
	}
	signed, err := runmsg.Sign(e.opts.ClientSecret, now.Unix(), raw)
	if err != nil {
		return nil, fmt.Errorf("emulator: sign run message: %w", err)
	}
	return signed, nil
}

// newMessage is the run message of a new run, as Port writes it to the runs topic.
func (e *Emulator) newMessage(id, action, blueprint, entity string, props map[string]any, now time.Time) (runMessage, error) {
	m := runMessage{
		Action:       action,
		ResourceType: "run",
		Status:       "TRIGGERED",
		Trigger: msgTrigger{
			By:     msgBy{OrgID: e.opts.OrgID, UserID: e.opts.ClientID},
			Origin: "API",
			At:     fmtTime(now),
		},
		Context: msgContext{Blueprint: blueprint, RunID: id},
		Payload: msgPayload{
			Action: msgAction{
				Identifier: action, Title: action,
				InvocationMethod: e.invocation(action),
				Trigger:          "CREATE",
				Blueprint:        blueprint,
			},
			Properties: props,
		},
		Headers: map[string]any{},
	}
	if err := e.encryptSecrets(&m, action); err != nil {
		return runMessage{}, err
	}
	if entity != "" {
		m.Context.Entity = &entity
		m.Payload.Entity = &msgEntity{Identifier: entity, Title: entity, Blueprint: blueprint,
			Properties: map[string]any{}, Relations: map[string]any{}}
		m.Payload.Action.Trigger = "DAY-2"
	}
	return m, nil
}

// encodeMessage is a message's JSON as Port's JSON.stringify writes it.
func encodeMessage(v any) ([]byte, error) {
	// JSON.stringify does not escape <, > and &: neither do we.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("emulator: encode run message: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

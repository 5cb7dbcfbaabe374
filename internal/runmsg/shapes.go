package runmsg

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
)

// The ways Port hands a run to an agent, as Port's own code shows them (README "Which
// invocation method to choose"; the vectors in test/harness/vectors/port name their sources):
//
//   - On the runs topic, the run message of an action whose invocation method is KAFKA (no
//     agent flag), or WEBHOOK or GITLAB with agent: true (what port-agent consumes), and a
//     workflow webhook node's run with agent: true (context.runId "wfnr_...", the node's
//     config as payload.action.invocationMethod). Change-log events share the topic in
//     port-agent's setup and are not runs.
//   - From the claim-pending routes (POST /v1/actions/runs/claim-pending, POST
//     /v1/workflows/runs/claim-pending), as port-agent and Ocean read them: FromClaimedRun and
//     FromClaimedNodeRun turn those into the message port-agent builds of them.

// WorkflowNodeRunPrefix starts the run ids of Port Workflows' node runs.
const WorkflowNodeRunPrefix = "wfnr_"

// IsWorkflowNodeRun reports whether a run id is a workflow node run's.
func IsWorkflowNodeRun(runID string) bool { return strings.HasPrefix(runID, WorkflowNodeRunPrefix) }

// forAnAgent refuses what shares the runs topic and is not a run: a change-log event, as
// port-agent's Kafka streamer reads it. Unlike port-agent it does not ask for agent: true:
// Port's own example runs (the seed's, README's vectors) carry agent: false, and any run of a
// configured action on the topic is this deployment's to run.
func forAnAgent(root map[string]any) error {
	if _, ok := root["changelogDestination"]; ok {
		return errors.New("a change-log event (changelogDestination), not a run")
	}
	return nil
}

// nodeInputs stands in for a workflow node run's inputs: the body its webhook node was
// configured with (payload.action.invocationMethod.body, or context.nodeConfig.body in a
// claimed node run), else a Kafka node's configured payload. Port documents the body as a
// node config field; that it travels inside the invocation method is this project's
// reading of port-agent's fixtures, which carry the node config there.
func nodeInputs(doc any) any {
	for _, path := range [][]string{
		{"payload", "action", "invocationMethod", "body"},
		{"context", "nodeConfig", "body"},
	} {
		if b := Lookup(doc, path...); b != nil {
			return b
		}
	}
	payload := Lookup(doc, "payload")
	if Lookup(payload, "action", "invocationMethod") != nil {
		return nil // the agent's envelope: no inputs
	}
	return payload
}

// nodeOf is what identifies a workflow node run's command: its node's invocation URL (where
// port-agent reads it), and the workflow and node identifiers of fields no Port source
// shows today, read if Port ever sends them.
func nodeOf(doc any) (workflow, node, url string) {
	workflow = firstIdentifier(doc, []string{"context", "workflow"}, []string{"workflow"})
	node = firstIdentifier(doc, []string{"context", "node"}, []string{"node"})
	for _, path := range [][]string{
		{"payload", "action", "invocationMethod", "url"},
		{"context", "nodeConfig", "url"},
	} {
		if s, ok := Lookup(doc, path...).(string); ok && s != "" {
			return workflow, node, s
		}
	}
	return workflow, node, ""
}

func firstIdentifier(doc any, paths ...[]string) string {
	for _, p := range paths {
		if s := identifier(Lookup(doc, p...)); s != "" {
			return s
		}
	}
	return ""
}

// FromClaimedRun turns one run of Port's claim-pending answer into the run message
// port-agent builds of it (polling_to_webhook_processor.process_run): the webhook body
// (payload.body) with the run's id as context.runId and its invocation method (payload
// without body and agent) as payload.action.invocationMethod. Ocean's claimed runs carry no
// body: their action identifier and integrationActionExecutionProperties make the run.
// Claimed runs are not signed (the authenticated answer vouches for them): see DecodeClaimed.
func FromClaimedRun(raw []byte) ([]byte, error) {
	run, err := claimedObject(raw)
	if err != nil {
		return nil, err
	}
	id, _ := run["id"].(string)
	if id == "" {
		return nil, errors.New("claimed run: no id")
	}
	payload, _ := run["payload"].(map[string]any)
	invocation := maps.Clone(payload)
	delete(invocation, "body")
	delete(invocation, "agent")
	msg, _ := payload["body"].(map[string]any)
	if msg == nil {
		msg = map[string]any{}
	}
	if h, ok := payload["headers"].(map[string]any); ok {
		msg["headers"] = h
	}
	inner := objectAt(msg, "payload")
	action := objectAt(inner, "action")
	action["invocationMethod"] = invocation
	if ident := Lookup(run, "action", "identifier"); ident != nil {
		if _, ok := action["identifier"]; !ok {
			action["identifier"] = ident
		}
	}
	if props, ok := payload["integrationActionExecutionProperties"]; ok && inner["properties"] == nil {
		inner["properties"] = props
	}
	objectAt(msg, "context")["runId"] = id
	return json.Marshal(msg)
}

// FromClaimedNodeRun turns one node run of the workflow claim-pending answer (or Ocean's
// lookup of one) into the message port-agent builds of it (process_wf_node_run): the node's
// config (config, or node.config in Ocean's lookup) as the invocation method and as
// context.nodeConfig, its identifier as context.runId.
func FromClaimedNodeRun(raw []byte) ([]byte, error) {
	nr, err := claimedObject(raw)
	if err != nil {
		return nil, err
	}
	id, _ := nr["identifier"].(string)
	if id == "" {
		return nil, errors.New("claimed node run: no identifier")
	}
	config, _ := nr["config"].(map[string]any)
	for _, path := range [][]string{{"node", "config"}, {"node", "nodeConfig"}} {
		if config == nil {
			config, _ = Lookup(nr, path...).(map[string]any)
		}
	}
	invocation := maps.Clone(config)
	delete(invocation, "agent")
	headers, _ := config["headers"].(map[string]any)
	if headers == nil {
		headers = map[string]any{}
	}
	ctx := map[string]any{"runId": id, "nodeConfig": config}
	if node := Lookup(nr, "node", "identifier"); node != nil {
		ctx["node"] = node
	}
	payload := map[string]any{"action": map[string]any{"invocationMethod": invocation}}
	if props, ok := config["integrationActionExecutionProperties"]; ok {
		payload["properties"] = props
	}
	return json.Marshal(map[string]any{"headers": headers, "payload": payload, "context": ctx})
}

func claimedObject(raw []byte) (map[string]any, error) {
	if len(raw) > DefaultMaxBytes {
		return nil, fmt.Errorf("claimed run is %d bytes, over the %d-byte limit", len(raw), DefaultMaxBytes)
	}
	// Numbers stay as written (json.Number), as a Kafka message's do: float64 would round
	// an integer past 2^53 before the run's context is made of them.
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil || v == nil {
		return nil, errors.New("claimed run is not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("claimed run: data after its JSON object")
	}
	return v, nil
}

// objectAt is m[k], an object to fill in, made (and set) when m[k] is missing or not an
// object. A claimed answer is decoded afresh and nothing else holds it: it is changed in place.
func objectAt(m map[string]any, k string) map[string]any {
	o, ok := m[k].(map[string]any)
	if !ok {
		o = map[string]any{}
		m[k] = o
	}
	return o
}

package agent

import (
	"testing"

	"go.uber.org/zap"

	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/runmsg"
)

func routingAgent(t *testing.T, actions map[string]config.Action) *Agent {
	t.Helper()
	a := &Agent{log: zap.NewNop(), actions: map[string]*action{}}
	for name, ac := range actions {
		act, err := newAction(name, ac, nil)
		if err != nil {
			t.Fatal(err)
		}
		a.actions[name] = act
	}
	a.nodeActions = nodeActionsByName(a.actions)
	return a
}

func decodeRun(t *testing.T, raw string) runmsg.Run {
	t.Helper()
	d, err := runmsg.NewDecoder(runmsg.Options{})
	if err != nil {
		t.Fatal(err)
	}
	run, err := d.Decode([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return run
}

// when routes an action's runs between deployments; a node run goes to the first action (by
// name) whose workflowNode matches and whose when takes it.
func TestRoute(t *testing.T) {
	a := routingAgent(t, map[string]config.Action{
		"deploy": {Command: []string{"true"}, When: `.payload.properties.cluster == "eu"`},
		"probe":  {Command: []string{"true"}, When: `.payload.properties.n + 1`}, // never exactly true
		"b_node": {Command: []string{"true"}, WorkflowNode: &config.WorkflowNode{URL: "https://x.invalid/build"}, When: `.payload.action.invocationMethod.body.cluster == "eu"`},
		"c_node": {Command: []string{"true"}, WorkflowNode: &config.WorkflowNode{URL: "https://x.invalid/build"}},
	})
	for _, tc := range []struct {
		name, raw  string
		want       routing
		wantAction string
	}{
		{"when true", `{"action":"deploy","context":{"runId":"r_1"},"payload":{"properties":{"cluster":"eu"}}}`, routed, "deploy"},
		{"when false", `{"action":"deploy","context":{"runId":"r_1"},"payload":{"properties":{"cluster":"us"}}}`, filtered, ""},
		{"when not a boolean", `{"action":"probe","context":{"runId":"r_1"},"payload":{"properties":{"n":1}}}`, filtered, ""},
		{"when fails", `{"action":"probe","context":{"runId":"r_1"},"payload":{"properties":{"n":"x"}}}`, filtered, ""},
		{"not configured", `{"action":"other","context":{"runId":"r_1"}}`, notConfigured, ""},
		{"node, first by name", `{"context":{"runId":"wfnr_1"},"payload":{"action":{"invocationMethod":{"type":"WEBHOOK","url":"https://x.invalid/build","body":{"cluster":"eu"}}}}}`, routed, "b_node"},
		{"node, first's when false", `{"context":{"runId":"wfnr_1"},"payload":{"action":{"invocationMethod":{"url":"https://x.invalid/build","body":{"cluster":"us"}}}}}`, routed, "c_node"},
		{"node, unmatched", `{"context":{"runId":"wfnr_1"},"payload":{"action":{"invocationMethod":{"url":"https://x.invalid/test"}}}}`, unmatchedNode, ""},
	} {
		run := decodeRun(t, tc.raw)
		act, why := a.route(&run)
		if why != tc.want || (act == nil) != (tc.wantAction == "") || (act != nil && (act.name != tc.wantAction || run.Action != tc.wantAction)) {
			t.Errorf("%s: routed %v to %+v (run action %q), want %v to %q", tc.name, why, act, run.Action, tc.want, tc.wantAction)
		}
	}
	// A node run whose matching actions all leave it is another deployment's, not unmatched.
	b := routingAgent(t, map[string]config.Action{
		"only": {Command: []string{"true"}, WorkflowNode: &config.WorkflowNode{URL: "https://x.invalid/build"}, When: "false"},
	})
	run := decodeRun(t, `{"context":{"runId":"wfnr_1"},"payload":{"action":{"invocationMethod":{"url":"https://x.invalid/build"}}}}`)
	if _, why := b.route(&run); why != filtered {
		t.Errorf("node run left by when: %v, want filtered", why)
	}
}

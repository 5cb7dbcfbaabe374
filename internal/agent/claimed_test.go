package agent

import (
	"encoding/json"
	"os"
	"testing"
	"time"
)

// Port's claimed run (port-agent's fixture shape) reads as the run message port-agent
// builds of it: the body, with the run's id as context.runId and the invocation method.
func TestClaimedMessage(t *testing.T) {
	raw := []byte(`{"_id":"r_1","id":"r_1","payload":{"type":"WEBHOOK","url":"http://x","agent":true,"synchronized":false,
		"method":"POST","headers":{},"body":{"context":{"runId":"r_other","blueprint":"svc"},"payload":{"action":{"identifier":"deploy"}},"action":"deploy"}}}`)
	msg, err := claimedMessage(raw, false)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Action  string
		Context struct{ RunID, Blueprint string }
		Payload struct {
			Action struct {
				Identifier       string
				InvocationMethod map[string]any
			}
		}
	}
	if err := json.Unmarshal(msg, &got); err != nil {
		t.Fatal(err)
	}
	if got.Context.RunID != "r_1" || got.Context.Blueprint != "svc" || got.Payload.Action.Identifier != "deploy" ||
		got.Payload.Action.InvocationMethod["type"] != "WEBHOOK" || got.Payload.Action.InvocationMethod["agent"] != nil {
		t.Errorf("message %s", msg)
	}
	for _, bad := range []string{`[]`, `{"id":"r_1"}`, `{"payload":{"body":{}}}`, `{"id":5,"payload":{"body":{}}}`} {
		if _, err := claimedMessage([]byte(bad), false); err == nil {
			t.Errorf("claimed run %s read without an error", bad)
		}
	}
	if _, err := claimedMessage([]byte(`{"config":{}}`), true); err == nil {
		t.Error("a node run without identifier read without an error")
	}
}

func TestLeaseMark(t *testing.T) {
	until := time.Date(2026, 12, 5, 20, 0, 0, 0, time.UTC)
	got, ok := leaseEnd(leaseMark("pod-a until x", until))
	if !ok || !got.Equal(until) {
		t.Fatalf("leaseEnd(leaseMark) = %v %v, want %v", got, ok, until)
	}
	for _, id := range []string{"", "gh-run-123", "port-runner lease pod", "port-runner lease pod until never"} {
		if _, ok := leaseEnd(id); ok {
			t.Errorf("leaseEnd(%q) read a lease", id)
		}
	}
}

// Claimed runs come from Port's answer: no input may crash the agent.
func FuzzClaimedMessage(f *testing.F) {
	for _, name := range []string{"port-agent.polling.claimed_action_run.json", "port-agent.polling.claimed_wf_node_run.json"} {
		if b, err := os.ReadFile("testdata/" + name); err == nil {
			f.Add(b, name != "port-agent.polling.claimed_action_run.json")
		}
	}
	f.Add([]byte(`{"id":"r_1","payload":{"body":{"context":null,"payload":[]}}}`), false)
	f.Add([]byte(`{"identifier":"wfnr_1","config":null}`), true)
	f.Fuzz(func(t *testing.T, raw []byte, node bool) {
		msg, err := claimedMessage(raw, node)
		if err == nil && !json.Valid(msg) {
			t.Fatalf("invalid JSON %q from %q", msg, raw)
		}
		_, _ = leaseEnd(string(raw))
	})
}

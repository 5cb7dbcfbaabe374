package runmsg

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/port-runner/port-runner/test/harness/vectors"
)

// readPortVector is one of Port's own message shapes (vectors.PortDir; its SOURCES.md names
// each one's source).
func readPortVector(t testing.TB, name string) []byte {
	t.Helper()
	return readFileIn(t, vectors.PortDir(), name)
}

// portVector is what one of Port's shapes must decode to. claimed: it is an answer of a
// claim-pending route (node: a node run), read with DecodeClaimed; else a Kafka message.
type portVector struct {
	claimed, node bool
	reason        SkipReason // "": a run; else Decode's skip reason even when trusting
	verify        error      // with verification: nil (valid), ErrUnsigned, ErrSignatureMismatch
	runID, action string
	nodeURL       string
	properties    map[string]any // nil: not checked
}

var portVectors = map[string]portVector{
	"port-agent.webhook_run.signed.json":              {runID: "r_jE5FhDURh4Uen2Qr", action: "Create", properties: map[string]any{}},
	"port-agent.webhook_run.synchronized.signed.json": {runID: "r_jE5FhDURh4Uen2Qr", action: "Create"},
	"port-agent.webhook_run.method_get.signed.json":   {runID: "r_jE5FhDURh4Uen2Qr", action: "Create"},
	// port-agent skips agent: false; here any run of a configured action runs.
	"port-agent.webhook_run.agent_false.signed.json": {runID: "r_jE5FhDURh4Uen2Qr", action: "Create"},
	"derived.gitlab_run.signed.json":                 {runID: "r_jE5FhDURh4Uen2Qr", action: "Create"},
	// Signed keeping "headers": valid under the WEBHOOK rule only, so GITLAB's must refuse it.
	"derived.gitlab_run.signed_keeping_empty_headers.json":      {verify: ErrSignatureMismatch, runID: "r_jE5FhDURh4Uen2Qr", action: "Create"},
	"port-agent.wf_node_run.kafka.signed.json":                  {runID: "wfnr_abc123", nodeURL: "https://httpbin.org/post", properties: map[string]any{}},
	"port-agent.wf_node_run.kafka.synchronized.signed.json":     {runID: "wfnr_abc123", nodeURL: "https://httpbin.org/post"},
	"port-agent.wf_node_run.kafka.not_synchronized.signed.json": {runID: "wfnr_abc123", nodeURL: "https://httpbin.org/post"},
	"port-agent.wf_node_run.kafka.agent_false.signed.json":      {runID: "wfnr_abc123", nodeURL: "https://httpbin.org/post"},
	"port-agent.change_log.json":                                {reason: ReasonIgnored},
	"port-agent.polling.wf_node_run.as_invoked.json":            {verify: ErrUnsigned, runID: "wfnr_abc123", nodeURL: "https://httpbin.org/post"},
	"port-docs.kafka-invocation.message.json": {verify: ErrUnsigned, runID: "run_q2mGf9ZYkFRnZJjB", action: "create_vm",
		properties: map[string]any{"cpu": 2.0, "memory": 4.0, "storage": 50.0, "region": "eu-west-1"}},
	"port-docs.agent-incoming-event.json":                       {verify: ErrUnsigned, runID: "r_HardNzG6kzc9vWOQ", action: "action_identifier"},
	"port-agent.polling.claimed_action_run.json":                {claimed: true, runID: "run_123", action: "deploy"},
	"port-agent.polling.claimed_action_run.processor-test.json": {claimed: true, runID: "run_123", action: "deploy", properties: map[string]any{"environment": "production"}},
	"port-agent.polling.claimed_wf_node_run.json":               {claimed: true, node: true, runID: "wfnr_abc123", nodeURL: "http://localhost:8080/webhook"},
	"port-agent.polling.claimed_wf_node_run.streamer-test.json": {claimed: true, node: true, runID: "wfnr_abc123", nodeURL: "https://httpbin.org/post"},
	"ocean.action_run.claimed.json": {claimed: true, runID: "test-run-id-6f1c2a44-9d1e-4c6b-8a0e-2b7d5e3f4a10",
		action: "test-action-identifier", properties: map[string]any{}},
	"ocean.wf_node_run.claim_shape.json":  {claimed: true, node: true, runID: "wfnr_claim", properties: map[string]any{}},
	"ocean.wf_node_run.lookup_shape.json": {claimed: true, node: true, runID: "wfnr_lookup", properties: map[string]any{}},
}

// Every shape Port's own agent and Ocean take decodes as they read it: signed Kafka messages
// verify under port-agent's rule (GITLAB's without "headers"), messages not for an agent are
// ignored, claimed runs decode without a signature.
func TestPortVectors(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(vectors.PortDir(), "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no vectors in %s: %v", vectors.PortDir(), err)
	}
	verifying := mustDecoder(t, Options{Secret: vectors.PortAgentSecret, VerifySignature: true})
	trusting := mustDecoder(t, Options{})
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			want, ok := portVectors[name]
			if !ok {
				t.Fatalf("no expectation for %s: add a row", name)
			}
			raw := readPortVector(t, name)
			if want.claimed {
				run, err := verifying.DecodeClaimed(raw, want.node)
				if err != nil {
					t.Fatalf("DecodeClaimed: %v", err)
				}
				checkPortRun(t, run, want)
				return
			}
			run, err := verifying.Decode(raw)
			switch {
			case want.reason != "":
				var se *SkipError
				if !errors.As(err, &se) || se.Reason != want.reason {
					t.Fatalf("Decode = %v, want skip %s", err, want.reason)
				}
				if _, err := trusting.Decode(raw); !errors.As(err, &se) || se.Reason != want.reason {
					t.Fatalf("Decode without verification = %v, want skip %s", err, want.reason)
				}
				return
			case want.verify != nil:
				if !errors.Is(err, want.verify) {
					t.Fatalf("Decode = %v, want %v", err, want.verify)
				}
				if run, err = trusting.Decode(raw); err != nil {
					t.Fatalf("Decode without verification: %v", err)
				}
			case err != nil:
				t.Fatalf("Decode: %v", err)
			}
			checkPortRun(t, run, want)
		})
	}
}

func checkPortRun(t *testing.T, run Run, want portVector) {
	t.Helper()
	if run.ID != want.runID || run.Action != want.action || run.NodeURL != want.nodeURL {
		t.Fatalf("run %q action %q node url %q, want %q %q %q", run.ID, run.Action, run.NodeURL, want.runID, want.action, want.nodeURL)
	}
	if want.properties == nil {
		return
	}
	got, _ := json.Marshal(run.Context["properties"])
	if w, _ := json.Marshal(want.properties); string(got) != string(w) {
		t.Fatalf("properties = %s, want %s", got, w)
	}
}

// FromClaimedNodeRun builds what port-agent builds of a claimed node run before its jq
// mapping (the as_invoked vector transcribes port-agent's process_wf_node_run).
func TestFromClaimedNodeRunIsPortAgents(t *testing.T) {
	got, err := FromClaimedNodeRun(readPortVector(t, "port-agent.polling.claimed_wf_node_run.streamer-test.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(readPortVector(t, "port-agent.polling.wf_node_run.as_invoked.json"), &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("got  %s\nwant %s", got, readPortVector(t, "port-agent.polling.wf_node_run.as_invoked.json"))
	}
}

// Sign follows the same rule as Verify for GitLab invocations: a GITLAB message signed here
// verifies, and its signature does not cover "headers" (port-agent's rule).
func TestSignGitLab(t *testing.T) {
	raw := []byte(`{"context":{"runId":"r_1"},"action":"a","payload":{"action":{"invocationMethod":{"type":"GITLAB","agent":true}}},"headers":{"h":"1"}}`)
	signed, err := Sign("s3cret", 1713277889, raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify("s3cret", signed); err != nil {
		t.Fatalf("Verify(Sign) = %v", err)
	}
	changed := bytes.Replace(signed, []byte(`"h":"1"`), []byte(`"h":"changed"`), 1)
	if bytes.Equal(changed, signed) {
		t.Fatalf("no header to change in %s", signed)
	}
	if err := Verify("s3cret", changed); err != nil {
		t.Fatalf("a GITLAB signature covered headers: %v", err)
	}
}

// A claimed answer that is not a run is refused with a reason, never a panic.
func TestDecodeClaimedErrors(t *testing.T) {
	d := mustDecoder(t, Options{})
	for _, raw := range []string{`null`, `[]`, `{}`, `{"id":""}`, `{"id":"r/../x","payload":{"body":{"action":"a"}}}`, `{"identifier":7}`} {
		for _, node := range []bool{false, true} {
			var se *SkipError
			if _, err := d.DecodeClaimed([]byte(raw), node); !errors.As(err, &se) || se.Reason != ReasonInvalid {
				t.Errorf("DecodeClaimed(%s, node=%v) = %v, want invalid", raw, node, err)
			}
		}
	}
}

func FuzzDecodeClaimed(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(vectors.PortDir(), "*claim*.json"))
	for _, p := range files {
		f.Add(readPortVector(f, filepath.Base(p)), false)
		f.Add(readPortVector(f, filepath.Base(p)), true)
	}
	f.Add([]byte(`{"id":"r_1","payload":{"body":{"payload":"x","context":[]}}}`), false)
	f.Add([]byte(`{"identifier":"wfnr_1","node":{"config":null,"nodeConfig":{"url":1}}}`), true)
	d := mustDecoder(f, Options{})
	f.Fuzz(func(t *testing.T, raw []byte, node bool) {
		run, err := d.DecodeClaimed(raw, node)
		if err != nil {
			var se *SkipError
			if !errors.As(err, &se) {
				t.Fatalf("DecodeClaimed error %T %v is not a *SkipError", err, err)
			}
			return
		}
		if CheckID(run.ID) != nil {
			t.Fatalf("run id %q", run.ID)
		}
	})
}

// A claimed run's numbers keep their exact value, as a Kafka message's do: an integer past
// float64's 2^53 is not rounded on its way through FromClaimedRun.
func TestDecodeClaimedKeepsNumbersExact(t *testing.T) {
	const props = `{"n":9007199254740993,"big":12345678901234567891,"f":1.10}`
	claimed := `{"id":"r_1","action":{"identifier":"deploy"},"payload":{"body":{"payload":{"properties":` + props + `}}}}`
	onKafka := `{"context":{"runId":"r_1"},"action":"deploy","payload":{"properties":` + props + `}}`
	d := mustDecoder(t, Options{})
	fromClaim, err := d.DecodeClaimed([]byte(claimed), false)
	if err != nil {
		t.Fatal(err)
	}
	fromKafka, err := d.Decode([]byte(onKafka))
	if err != nil {
		t.Fatal(err)
	}
	got, want := fromClaim.Context["properties"], fromKafka.Context["properties"]
	if w, _ := json.Marshal(want); string(w) != `{"big":12345678901234567891,"f":1.1,"n":9007199254740993}` {
		t.Fatalf("the Kafka message's properties read %s", w)
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Fatalf("claimed properties %s (%#v), on Kafka %s", g, got, w)
	}
}

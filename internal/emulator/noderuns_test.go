package emulator

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/port-runner/port-runner/internal/runmsg"
)

func TestNodeRunLifecycle(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.token(t)
	r := f.do(t, "POST", "/v1/workflows/ci/nodes/build/runs", tok, map[string]any{"payload": map[string]any{"image": "api"}})
	want(t, r, 201, "")
	id := r.body["nodeRun"].(map[string]any)["identifier"].(string)
	if !strings.HasPrefix(id, "wfnr_") {
		t.Fatalf("id %q", id)
	}
	msgs := f.messages()
	if len(msgs) != 1 || string(msgs[0].key) != id {
		t.Fatalf("produced %d", len(msgs))
	}
	if err := runmsg.Verify(testSecret, msgs[0].value); err != nil {
		t.Fatalf("node run message not signed: %v", err)
	}
	d, _ := runmsg.NewDecoder(runmsg.Options{Secret: testSecret, VerifySignature: true})
	run, err := d.Decode(msgs[0].value)
	if err != nil || run.ID != id || run.NodeURL != NodeURL("ci", "build") || run.Context["properties"].(map[string]any)["image"] != "api" {
		t.Fatalf("decoded %+v, %v", run, err)
	}

	// Not an action run.
	want(t, f.do(t, "GET", "/v1/actions/runs/"+id, tok, nil), 404, "not_found")
	want(t, f.do(t, "POST", "/v1/workflows/nodes/runs/"+id+"/logs", tok, map[string]any{"logs": []any{}}), 422, "invalid_request")
	want(t, f.do(t, "POST", "/v1/workflows/nodes/runs/"+id+"/logs", tok, map[string]any{"logs": []any{map[string]any{"level": "LOUD", "message": "x"}}}), 422, "invalid_request")
	want(t, f.do(t, "POST", "/v1/workflows/nodes/runs/"+id+"/logs", tok, map[string]any{"logs": []any{map[string]any{"level": "INFO", "message": "hello"}}}), 200, "")
	want(t, f.do(t, "PATCH", "/v1/workflows/nodes/runs/"+id, tok, map[string]any{"status": "COMPLETED"}), 422, "invalid_request")
	want(t, f.do(t, "PATCH", "/v1/workflows/nodes/runs/"+id, tok, map[string]any{"status": "COMPLETED", "result": "SUCCESS", "output": map[string]any{"tag": "v1"}}), 200, "")
	got := f.do(t, "GET", "/v1/workflows/nodes/runs/"+id, tok, nil)
	want(t, got, 200, "")
	nr := got.body["nodeRun"].(map[string]any)
	if nr["status"] != "COMPLETED" || nr["result"] != "SUCCESS" || nr["output"].(map[string]any)["tag"] != "v1" {
		t.Fatalf("node run %s", got.raw)
	}
	// Completed: further changes are refused, a second completion counted.
	want(t, f.do(t, "PATCH", "/v1/workflows/nodes/runs/"+id, tok, map[string]any{"status": "COMPLETED", "result": "FAILED"}), 409, "run_already_terminated")
	want(t, f.do(t, "POST", "/v1/workflows/nodes/runs/"+id+"/logs", tok, map[string]any{"logs": []any{map[string]any{"level": "INFO", "message": "late"}}}), 409, "run_already_terminated")
	st, _ := f.e.Run(id)
	if st.Status != "SUCCESS" || st.Terminations != 1 || st.RejectedTerminations != 1 || len(st.Logs) != 1 || st.Logs[0].Message != "hello" {
		t.Fatalf("state %+v", st)
	}
}

func TestSecretInputsAndSynchronous(t *testing.T) {
	f := newFixture(t, func(o *Options) {
		o.SecretInputs = map[string][]string{"rotate": {"password", "conf"}}
		o.Synchronous = []string{"rotate"}
	})
	tok := f.token(t)
	r := f.do(t, "POST", "/v1/actions/rotate/runs", tok, map[string]any{"properties": map[string]any{
		"password": "hunter2-s3cret", "conf": map[string]any{"a": 1}, "name": "db"}})
	want(t, r, 201, "")
	id := r.body["run"].(map[string]any)["id"].(string)
	raw := f.messages()[0].value
	if strings.Contains(string(raw), "hunter2") {
		t.Fatalf("message carries the secret in clear: %s", raw)
	}
	var m struct {
		Payload struct {
			Action struct {
				UserInputs struct {
					Properties map[string]struct{ Type, Encryption string }
				}
				InvocationMethod struct{ Synchronized bool }
			}
			Properties map[string]any
		}
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if m.Payload.Action.UserInputs.Properties["password"].Encryption != "aes256-gcm" || !m.Payload.Action.InvocationMethod.Synchronized {
		t.Fatalf("message %s", raw)
	}
	plain, err := runmsg.DecryptSecret(testSecret, m.Payload.Properties["password"].(string))
	if err != nil || string(plain) != "hunter2-s3cret" {
		t.Fatalf("decrypt: %q %v", plain, err)
	}
	if plain, err := runmsg.DecryptSecret(testSecret, m.Payload.Properties["conf"].(string)); err != nil || string(plain) != `{"a":1}` {
		t.Fatalf("object secret: %q %v", plain, err)
	}
	if st, _ := f.e.Run(id); st.Properties["password"] != "***" || st.Properties["name"] != "db" {
		t.Fatalf("stored properties %v", st.Properties)
	}

	want(t, f.do(t, "PATCH", "/v1/actions/runs/"+id+"/response", tok, map[string]any{}), 422, "invalid_request")
	want(t, f.do(t, "PATCH", "/v1/actions/runs/"+id+"/response", tok, map[string]any{"response": map[string]any{"ok": 1}}), 200, "")
	want(t, f.do(t, "POST", "/v1/actions/runs/"+id+"/logs", tok, map[string]any{"message": "m", "terminationStatus": "SUCCESS"}), 200, "")
	want(t, f.do(t, "PATCH", "/v1/actions/runs/"+id+"/response", tok, map[string]any{"response": 2}), 409, "run_already_terminated")
	if st, _ := f.e.Run(id); st.Response.(map[string]any)["ok"] != float64(1) {
		t.Fatalf("response %v", st.Response)
	}
}

func TestKafkaCredentialsRoute(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.token(t)
	want(t, f.do(t, "GET", "/v1/kafka-credentials", tok, nil), 404, "not_found")
	want(t, f.do(t, "GET", "/v1/kafka-credentials", "", nil), 401, "")
	f = newFixture(t, func(o *Options) {
		o.KafkaCredentials = &KafkaCredentials{Brokers: []string{"b:9196"}, Username: "u", Password: "p"}
	})
	r := f.do(t, "GET", "/v1/kafka-credentials", f.token(t), nil)
	want(t, r, 200, "")
	c := r.body["credentials"].(map[string]any)
	if c["username"] != "u" || c["password"] != "p" || c["brokers"].([]any)[0] != "b:9196" {
		t.Fatalf("credentials %s", r.raw)
	}
}

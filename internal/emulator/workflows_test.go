package emulator

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/port-runner/port-runner/internal/runmsg"
)

// A workflow cancelled with force fails its running node run at once (one termination, then
// every change refused); without force it is CANCELLING until its node run ends.
func TestCancelWorkflowRun(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.token(t)
	start := func() (nodeRun, workflowRun string) {
		r := f.do(t, "POST", "/v1/workflows/ci/nodes/build/runs", tok, map[string]any{"payload": map[string]any{}})
		want(t, r, 201, "")
		id := r.body["nodeRun"].(map[string]any)["identifier"].(string)
		st, _ := f.e.Run(id)
		return id, st.WorkflowRunID
	}
	id, wfr := start()
	if !strings.HasPrefix(wfr, "wfr_") {
		t.Fatalf("workflow run %q", wfr)
	}
	want(t, f.do(t, "POST", "/v1/workflows/runs/"+wfr+"/cancel?force=true", tok, nil), 200, "")
	st, _ := f.e.Run(id)
	if st.Status != "FAILURE" || st.Result != "FAILED" || st.Terminations != 1 {
		t.Fatalf("node run after a forced cancel: %+v", st)
	}
	r := f.do(t, "GET", "/v1/workflows/runs/"+wfr, tok, nil)
	want(t, r, 200, "")
	wf := r.body["workflowRun"].(map[string]any)
	if wf["status"] != "COMPLETED" || wf["result"] != "CANCELLED" || wf["nodeRuns"].([]any)[0].(map[string]any)["result"] != "FAILED" {
		t.Fatalf("workflow run %s", r.raw)
	}
	want(t, f.do(t, "POST", "/v1/workflows/nodes/runs/"+id+"/logs", tok, map[string]any{"logs": []any{map[string]any{"level": "INFO", "message": "late"}}}), 409, "run_already_terminated")
	want(t, f.do(t, "POST", "/v1/workflows/runs/"+wfr+"/cancel", tok, map[string]any{"force": true}), 422, "invalid_request")
	want(t, f.do(t, "POST", "/v1/workflows/runs/wfr_nope/cancel", tok, nil), 404, "not_found")

	id, wfr = start()
	want(t, f.do(t, "POST", "/v1/workflows/runs/"+wfr+"/cancel", tok, nil), 200, "")
	if wf, _ := f.e.WorkflowRun(wfr); wf.Status != "CANCELLING" {
		t.Fatalf("workflow run %+v", wf)
	}
	// The older PATCH log shape is still taken.
	want(t, f.do(t, "PATCH", "/v1/workflows/nodes/runs/"+id, tok, map[string]any{"status": "COMPLETED", "result": "SUCCESS",
		"logs": []any{map[string]any{"logLevel": "INFO", "log": "done", "tags": map[string]any{}}}}), 200, "")
	if wf, _ := f.e.WorkflowRun(wfr); wf.Status != "COMPLETED" || wf.Result != "CANCELLED" {
		t.Fatalf("workflow run %+v", wf)
	}
	if st, _ := f.e.Run(id); st.Result != "SUCCESS" || len(st.Logs) != 1 || st.Logs[0].Message != "done" {
		t.Fatalf("node run %+v", st)
	}
}

// GET /v1/actions/runs?active=true lists the open runs, newest first, and says "next" when
// limit cuts it; CancelRun ends a run as a user in Port does.
func TestListAndCancelRuns(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.token(t)
	var ids []string
	for i := range 3 {
		r := f.do(t, "POST", "/v1/actions/deploy/runs", tok, map[string]any{"properties": map[string]any{"i": i}})
		want(t, r, 201, "")
		ids = append(ids, r.body["run"].(map[string]any)["id"].(string))
	}
	if err := f.e.CancelRun(ids[1]); err != nil {
		t.Fatal(err)
	}
	if err := f.e.CancelRun(ids[1]); err == nil {
		t.Fatal("a second cancel was taken")
	}
	list := func(q string) (got []string, next bool) {
		r := f.do(t, "GET", "/v1/actions/runs"+q, tok, nil)
		want(t, r, 200, "")
		for _, run := range r.body["runs"].([]any) {
			got = append(got, run.(map[string]any)["id"].(string))
		}
		_, next = r.body["next"]
		return got, next
	}
	if got, next := list("?active=true"); fmt.Sprint(got) != fmt.Sprint([]string{ids[2], ids[0]}) || next {
		t.Fatalf("active runs %v (next %v)", got, next)
	}
	if got, next := list("?limit=2"); len(got) != 2 || !next {
		t.Fatalf("limited %v (next %v)", got, next)
	}
	want(t, f.do(t, "GET", "/v1/actions/runs?limit=1001", tok, nil), 422, "invalid_request")
	st, _ := f.e.Run(ids[1])
	if st.Status != "FAILURE" || st.Terminations != 1 || st.RejectedTerminations != 1 {
		t.Fatalf("cancelled run %+v", st)
	}
	// A log on it: refused, or with LogsAfterTermination taken (a termination never is).
	want(t, f.do(t, "POST", "/v1/actions/runs/"+ids[1]+"/logs", tok, map[string]any{"message": "late"}), 409, "run_already_terminated")
	g := newFixture(t, func(o *Options) { o.LogsAfterTermination = true })
	gt := g.token(t)
	r := g.do(t, "POST", "/v1/actions/deploy/runs", gt, map[string]any{})
	id := r.body["run"].(map[string]any)["id"].(string)
	if err := g.e.CancelRun(id); err != nil {
		t.Fatal(err)
	}
	want(t, g.do(t, "POST", "/v1/actions/runs/"+id+"/logs", gt, map[string]any{"message": "late"}), 200, "")
	want(t, g.do(t, "POST", "/v1/actions/runs/"+id+"/logs", gt, map[string]any{"message": "x", "terminationStatus": "SUCCESS"}), 409, "run_already_terminated")
}

// Runs carry the invocation method the action has: KAFKA, or WEBHOOK and GITLAB with
// agent: true, each signed as Port's own agent verifies it; client-side inputs are sealed
// with the input's public key, named in the schema.
func TestInvocationsAndClientSideInputs(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(o *Options) {
		o.Invocations = map[string]string{"hook": "WEBHOOK", "lab": "GITLAB"}
		o.ClientSideInputs = map[string]map[string]*rsa.PublicKey{"hook": {"token": &key.PublicKey}}
	})
	tok := f.token(t)
	for i, action := range []string{"plain", "hook", "lab"} {
		want(t, f.do(t, "POST", "/v1/actions/"+action+"/runs", tok, map[string]any{"properties": map[string]any{"token": "s3cr3t-token"}}), 201, "")
		raw := f.messages()[i].value
		if err := runmsg.Verify(testSecret, raw); err != nil {
			t.Fatalf("%s: %v\n%s", action, err, raw)
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		im := runmsg.Lookup(m, "payload", "action", "invocationMethod")
		wantType := map[string]string{"plain": "KAFKA", "hook": "WEBHOOK", "lab": "GITLAB"}[action]
		if runmsg.InvocationType(m) != wantType || (wantType != "KAFKA") != (runmsg.Lookup(im, "agent") == true) {
			t.Fatalf("%s: invocation method %v", action, im)
		}
	}
	raw := string(f.messages()[1].value)
	if strings.Contains(raw, "s3cr3t-token") {
		t.Fatalf("client-side input in clear: %s", raw)
	}
	var m map[string]any
	_ = json.Unmarshal([]byte(raw), &m)
	enc := runmsg.Lookup(m, "payload", "action", "userInputs", "properties", "token", "encryption")
	pub, _ := runmsg.Lookup(enc, "key").(string)
	value, _ := runmsg.Lookup(m, "payload", "properties", "token").(string)
	plain, err := runmsg.DecryptClientSide([]*rsa.PrivateKey{key}, pub, value)
	if runmsg.Lookup(enc, "algorithm") != "client-side" || err != nil || string(plain) != "s3cr3t-token" {
		t.Fatalf("client-side input: %v %q %v", enc, plain, err)
	}
}

package emulator

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// reservedDo is fixture.do with the x-port-reserved-usage header Port's agents send.
func (f *fixture) reservedDo(t *testing.T, method, path, tok string, body any) resp {
	t.Helper()
	r, err := f.tryWith(http.Header{"X-Port-Reserved-Usage": {"true"}}, method, path, tok, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func claimedIDs(t *testing.T, r resp, field string) []string {
	t.Helper()
	want(t, r, 200, "")
	list, ok := r.body[field].([]any)
	if !ok {
		t.Fatalf("claim answer has no %q list: %s", field, r.raw)
	}
	var ids []string
	for _, v := range list {
		o := v.(map[string]any)
		id, _ := o["id"].(string)
		if id == "" {
			id, _ = o["identifier"].(string)
		}
		ids = append(ids, id)
	}
	return ids
}

func pollingFixture(t *testing.T) *fixture {
	return newFixture(t, func(o *Options) { o.Delivery = DeliveryPolling })
}

func TestClaimHoldsRunsInsteadOfProducing(t *testing.T) {
	f := pollingFixture(t)
	run, err := f.e.CreateRun(context.Background(), "deploy", CreateRunRequest{Properties: map[string]any{"env": "prod"}})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(f.messages()); n != 0 {
		t.Fatalf("%d messages produced for a run held for claims", n)
	}
	tok := f.token(t)
	r := f.reservedDo(t, "POST", "/v1/actions/runs/claim-pending", tok,
		map[string]any{"installationId": "_PORT_EXEC_AGENT", "limit": 10, "invocationMethod": "WEBHOOK"})
	if ids := claimedIDs(t, r, "runs"); len(ids) != 1 || ids[0] != run.ID {
		t.Fatalf("claimed %v, want [%s]", ids, run.ID)
	}
	// port-agent's shape: id, and payload.body carrying the run message.
	got := r.body["runs"].([]any)[0].(map[string]any)
	payload := got["payload"].(map[string]any)
	if payload["agent"] != true || payload["type"] != "WEBHOOK" {
		t.Errorf("payload %v: want the execution agent's WEBHOOK invocation", payload)
	}
	body := payload["body"].(map[string]any)
	if body["context"].(map[string]any)["runId"] != run.ID || body["action"] != "deploy" {
		t.Errorf("payload.body %v: want the run message", body)
	}
	if got["pendingExecution"] != true || got["installationId"] != "_PORT_EXEC_AGENT" || got["claimedUntil"] == nil {
		t.Errorf("claimed run %v lacks pendingExecution/installationId/claimedUntil", got)
	}
}

func TestClaimVisibilityTimeoutAndAck(t *testing.T) {
	f := pollingFixture(t)
	a, _ := f.e.CreateRun(context.Background(), "deploy", CreateRunRequest{})
	b, _ := f.e.CreateRun(context.Background(), "deploy", CreateRunRequest{})
	tok := f.token(t)
	claim := func(limit int) []string {
		return claimedIDs(t, f.reservedDo(t, "POST", "/v1/actions/runs/claim-pending", tok,
			map[string]any{"installationId": "_PORT_EXEC_AGENT", "limit": limit, "visibilityTimeoutMs": 5000}), "runs")
	}
	if ids := claim(1); len(ids) != 1 || ids[0] != a.ID {
		t.Fatalf("first claim %v, want the oldest [%s]", ids, a.ID)
	}
	if ids := claim(10); len(ids) != 1 || ids[0] != b.ID {
		t.Fatalf("second claim %v, want only [%s]: %s is hidden by its claim", ids, b.ID, a.ID)
	}
	if ids := claim(10); len(ids) != 0 {
		t.Fatalf("claimed %v while both claims hold", ids)
	}
	want(t, f.reservedDo(t, "PATCH", "/v1/actions/runs/ack", tok, map[string]string{"runId": a.ID}), 200, "")
	f.clk.Add(5 * time.Second)
	// a was acknowledged: never offered again; b's claim expired: offered again.
	if ids := claim(10); len(ids) != 1 || ids[0] != b.ID {
		t.Fatalf("claim after the visibility timeout %v, want [%s]", ids, b.ID)
	}
	want(t, f.reservedDo(t, "PATCH", "/v1/actions/runs/ack", tok, map[string]string{"runId": b.ID}), 200, "")
	// A second acknowledgement (another replica's, after its claim expired) is 409.
	want(t, f.reservedDo(t, "PATCH", "/v1/actions/runs/ack", tok, map[string]string{"runId": b.ID}), 409, "run_already_acknowledged")
	// port-agent's body counts what it acknowledged instead.
	r := f.reservedDo(t, "PATCH", "/v1/actions/runs/ack", tok, map[string]any{"runIds": []string{a.ID, b.ID}})
	if want(t, r, 200, ""); r.body["ackedCount"] != 0.0 {
		t.Errorf("ackedCount %v for two runs acknowledged already, want 0", r.body["ackedCount"])
	}
	if st, _ := f.e.Run(b.ID); st.Claims != 2 || !st.Acked || st.RejectedAcks != 2 {
		t.Errorf("run b: claims %d acked %v rejected acks %d, want 2 true 2 (the 409 and the batch)", st.Claims, st.Acked, st.RejectedAcks)
	}
}

func TestClaimRefusals(t *testing.T) {
	f := pollingFixture(t)
	tok := f.token(t)
	// Without the reserved-usage header.
	r := f.do(t, "POST", "/v1/actions/runs/claim-pending", tok, map[string]any{"installationId": "x", "limit": 1})
	want(t, r, 403, "forbidden")
	for _, body := range []map[string]any{
		{"limit": 1},
		{"installationId": "x", "limit": 0},
		{"installationId": "x", "limit": 101},
		{"installationId": "x", "limit": 1, "visibilityTimeoutMs": 999},
		{"installationId": "x", "limit": 1, "visibilityTimeoutMs": 600001},
		{"installationId": "x", "limit": 1, "unknown": true},
	} {
		want(t, f.reservedDo(t, "POST", "/v1/actions/runs/claim-pending", tok, body), 422, "invalid_request")
	}
	want(t, f.reservedDo(t, "PATCH", "/v1/actions/runs/ack", tok, map[string]string{"runId": "r_unknown"}), 404, "not_found")
	// A closed run is never offered.
	run, _ := f.e.CreateRun(context.Background(), "deploy", CreateRunRequest{})
	want(t, f.do(t, "PATCH", "/v1/actions/runs/"+run.ID, tok, map[string]string{"status": "FAILURE"}), 200, "")
	if ids := claimedIDs(t, f.reservedDo(t, "POST", "/v1/actions/runs/claim-pending", tok, map[string]any{"installationId": "x", "limit": 5}), "runs"); len(ids) != 0 {
		t.Errorf("claimed a closed run: %v", ids)
	}
}

func TestOrganizationStreamerSwitchesDelivery(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.token(t)
	want(t, f.do(t, "PATCH", "/v1/organization", tok, map[string]any{"settings": map[string]string{"portAgentStreamerName": "POLLING"}}), 200, "")
	if f.e.Delivery() != DeliveryPolling {
		t.Fatalf("delivery %q after POLLING", f.e.Delivery())
	}
	if _, err := f.e.CreateRun(context.Background(), "deploy", CreateRunRequest{}); err != nil {
		t.Fatal(err)
	}
	if len(f.messages()) != 0 {
		t.Error("a run was produced while the organization polls")
	}
	want(t, f.do(t, "PATCH", "/v1/organization", tok, map[string]any{"settings": map[string]string{"portAgentStreamerName": "HTTP"}}), 422, "invalid_request")
}

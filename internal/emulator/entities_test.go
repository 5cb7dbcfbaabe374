package emulator

import (
	"strings"
	"testing"
)

// TestEntities: the seed's "Tying Entities to an action run": an upsert with run_id is
// recorded on the entity, only while the run is IN_PROGRESS.
func TestEntities(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.token(t)
	f.e.RegisterRun("r_1", "act")
	body := map[string]any{"identifier": "billing", "title": "Billing", "properties": map[string]any{"region": "eu-west-1"}}

	want(t, f.do(t, "POST", "/v1/blueprints/microservice/entities", "", body), 401, "unauthorized")
	r := f.do(t, "POST", "/v1/blueprints/microservice/entities?upsert=true&run_id=r_1", tok, body)
	want(t, r, 201, "")
	if en, _ := r.body["entity"].(map[string]any); en["identifier"] != "billing" || en["blueprint"] != "microservice" {
		t.Fatalf("answer %s", r.raw)
	}
	want(t, f.do(t, "POST", "/v1/blueprints/microservice/entities", tok, body), 409, "identifier_taken")
	body["title"] = "Billing 2"
	want(t, f.do(t, "POST", "/v1/blueprints/microservice/entities?upsert=true", tok, body), 200, "")
	en, ok := f.e.Entity("microservice", "billing")
	if !ok || en.Title != "Billing 2" || en.RunID != "r_1" || strings.Join(en.RunIDs, ",") != "r_1" || en.Properties["region"] != "eu-west-1" {
		t.Fatalf("entity %+v (found %v)", en, ok)
	}
	var query string
	for _, rq := range f.e.Requests() {
		if rq.Method == "POST" && rq.Path == "/v1/blueprints/microservice/entities" && query == "" {
			query = rq.Query
		}
	}
	if query != "upsert=true&run_id=r_1" {
		t.Errorf("recorded query %q", query)
	}

	r = f.do(t, "GET", "/v1/blueprints/microservice/entities/billing", tok, nil)
	want(t, r, 200, "")
	r = f.do(t, "GET", "/v1/blueprints/microservice/entities", tok, nil)
	if list, _ := r.body["entities"].([]any); len(list) != 1 {
		t.Fatalf("list %s", r.raw)
	}
	want(t, f.do(t, "GET", "/v1/blueprints/service/entities/billing", tok, nil), 404, "not_found")
	want(t, f.do(t, "POST", "/v1/blueprints/microservice/entities", tok, map[string]any{"title": "x"}), 422, "invalid_request")
	want(t, f.do(t, "POST", "/v1/blueprints/microservice/entities?run_id=r_nope", tok, map[string]any{"identifier": "x"}), 404, "not_found")

	// Ended run: entities can no longer be tied to it.
	want(t, f.do(t, "POST", "/v1/actions/runs/r_1/logs", tok, map[string]any{"message": "m", "terminationStatus": "SUCCESS"}), 200, "")
	want(t, f.do(t, "POST", "/v1/blueprints/microservice/entities?upsert=true&run_id=r_1", tok, body), 422, "invalid_request")
	want(t, f.do(t, "DELETE", "/v1/blueprints/microservice/entities/billing?run_id=r_1", tok, nil), 422, "invalid_request")
	want(t, f.do(t, "DELETE", "/v1/blueprints/microservice/entities/billing", tok, nil), 200, "")
	if _, ok := f.e.Entity("microservice", "billing"); ok {
		t.Fatal("entity still there after DELETE")
	}
}

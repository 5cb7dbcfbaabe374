package portproxy

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/port-runner/port-runner/internal/config"
)

// FuzzRequestRules feeds the proxy's request rules (path splitting, route check, termination
// refusal, query rewriting) any method, path, query, body and allow rule, and checks what
// must hold whatever they say:
//   - a path that passes splitting has no empty, "." or ".." segment and none with a '/',
//     and the path sent upstream splits back into the same segments;
//   - the never-list holds whatever the rule says, in any letter case: no authentication or
//     credentials route, no body that may end a run or a workflow node run on the routes
//     that end them;
//   - without rules, only the run's own routes and its blueprint's are allowed;
//   - the query sent upstream has no run_id-like key but run_id, which is exactly the run's
//     own on an entity write.
func FuzzRequestRules(f *testing.F) {
	methods := []string{"GET", "POST", "PUT", "PATCH", "DELETE"}
	f.Add(uint8(1), "/v1/actions/runs/r_1/logs", "", []byte(`{"message":"x","terminationStatus":"SUCCESS"}`), "")
	f.Add(uint8(3), "/v1/actions/runs/r_1", "", []byte(`{"Status":"SUCCESS"}`), "/v1/**")
	f.Add(uint8(1), "/v1/blueprints/svc/entities/bulk", "run_id=r_2&run_id[]=r_3", []byte(`[{}]`), "")
	f.Add(uint8(0), "/v1/blueprints/svc/entities/..%2F..%2Factions", "", []byte(nil), "GET /v1/blueprints/*/entities/*")
	f.Add(uint8(1), "/v1/auth/access_token", "", []byte(`{}`), "/v1/**")
	f.Add(uint8(4), "/v1/blueprints/svc/entities/a%20b", "RUN-ID=x&upsert=true", []byte(nil), "")
	f.Add(uint8(1), "/v1/actions/runs/r_1/logs", "", []byte(`["terminationStatus"]`), "")
	f.Add(uint8(1), "/v1/Auth/access_token", "", []byte(`{}`), "/v1/**")
	f.Add(uint8(0), "/v1/Kafka-Credentials", "", []byte(nil), "GET /v1/*")
	f.Add(uint8(1), "/v1/apps/a/rotate-secret", "", []byte(nil), "/v1/**")
	f.Add(uint8(3), "/v1/workflows/nodes/runs/wfnr_2", "", []byte(`{"result":"SUCCESS"}`), "/v1/**")
	f.Add(uint8(2), "/v1/Workflows/Nodes/Runs/wfnr_2", "", []byte(`{"STATUS":"COMPLETED"}`), "PUT /v1/**")
	f.Fuzz(func(t *testing.T, m uint8, path, rawQuery string, body []byte, rule string) {
		method := methods[int(m)%len(methods)]
		segs, ok := splitPath(path)
		if !ok {
			return
		}
		for _, s := range segs {
			if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\\?#") {
				t.Fatalf("splitPath(%q) gave segment %q", path, s)
			}
		}
		esc := make([]string, len(segs))
		for i, s := range segs {
			esc[i] = url.PathEscape(s)
		}
		again, ok := splitPath("/v1/" + strings.Join(esc, "/"))
		if !ok || strings.Join(again, "\x00") != strings.Join(segs, "\x00") {
			t.Fatalf("path %q: upstream path splits to %q, want %q", path, again, segs)
		}

		var rules []config.AllowRule
		if r, err := config.ParseAllowRule(rule); err == nil && rule != "" {
			rules = append(rules, r)
		}
		g := &grant{runID: "r_1", blueprint: "svc", allow: rules}
		_, denied := g.check(method, segs, body)
		if !denied {
			lower := make([]string, len(segs))
			for i, s := range segs {
				lower[i] = strings.ToLower(s)
			}
			switch lower[0] {
			case "auth", "apps", "rotate-credentials", "kafka-credentials":
				t.Fatalf("%s %s allowed", method, path)
			}
			n, runLen := len(lower), 0 // runLen: segments up to the run's id, on a run's route
			switch {
			case n >= 3 && lower[0] == "actions" && lower[1] == "runs":
				runLen = 3
			case n >= 4 && lower[0] == "workflows" && lower[1] == "nodes" && lower[2] == "runs":
				runLen = 4
			}
			write := runLen > 0 && ((n == runLen && (method == "PATCH" || method == "PUT")) ||
				(n == runLen+1 && lower[n-1] == "logs" && method == "POST"))
			if write && (mayCarry(body, "terminationStatus") || mayCarry(body, "status") || mayCarry(body, "result")) {
				t.Fatalf("%s %s with body %q allowed: it may end a run", method, path, body)
			}
			if len(rules) == 0 && !(len(segs) >= 3 && segs[0] == "actions" && segs[2] == "r_1") && !(len(segs) >= 2 && segs[0] == "blueprints" && segs[1] == "svc") {
				t.Fatalf("%s %s allowed without rules", method, path)
			}
		}

		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return
		}
		out := g.query(method, segs, q)
		for k, v := range out {
			norm := strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(k))
			if strings.HasPrefix(norm, "runid") && (k != "run_id" || len(v) != 1 || v[0] != "r_1") {
				t.Fatalf("query %q -> %v: a client-sent %q survived", rawQuery, out, k)
			}
		}
		if entityWrite(method, segs) && (len(out["run_id"]) != 1 || out["run_id"][0] != "r_1") {
			t.Fatalf("%s %s: entity write without the run's run_id: %v", method, path, out)
		}
	})
}

// mayCarry is the oracle for hasKey: a non-empty body that is not a JSON object may carry
// anything; an object carries key in any letter case.
func mayCarry(body []byte, key string) bool {
	if strings.TrimSpace(string(body)) == "" {
		return false
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil {
		return true
	}
	for k := range obj {
		if strings.EqualFold(k, key) {
			return true
		}
	}
	return false
}

package portproxy

// What a request may reach: path splitting, the route check and the query sent upstream.

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// check decides whether the grant covers the request; segs are the decoded path
// segments after "/v1".
func (g *grant) check(method string, segs []string, body []byte) (apiErr, bool) {
	if e, never := neverProxied(method, segs, body); never {
		return e, true
	}
	if g.allowedByDefault(method, segs) {
		return apiErr{}, false
	}
	for _, r := range g.allow {
		if r.Match(method, segs) {
			return apiErr{}, false
		}
	}
	return errForbidden, true
}

// neverProxied is the never-list (README "Scripts calling Port"): what no run may do
// through the proxy, whatever portAPI.allow says. The route's words compare
// case-insensitively, as a router upstream may ("/v1/Auth/access_token" reached Port).
func neverProxied(method string, segs []string, body []byte) (apiErr, bool) {
	switch strings.ToLower(segs[0]) {
	case "auth", "apps", "rotate-credentials", "kafka-credentials":
		// Authentication, the organization's credential sets and the Kafka password.
		return errNever, true
	}
	// Ending any run: only the agent closes a run, exactly once. terminationStatus in a log
	// or status in a PATCH ends an action run, status or result a workflow node run; each
	// is refused on every run route.
	if runWrite(method, segs) && hasAnyKey(body, "terminationStatus", "status", "result") {
		return errTerminate, true
	}
	return apiErr{}, false
}

// runWrite reports the requests that write to a run, action run or workflow node run: a
// log POST and a PATCH/PUT of the run itself.
func runWrite(method string, segs []string) bool {
	rest, ok := runRoute(segs)
	return ok && ((len(rest) == 1 && strings.EqualFold(rest[0], "logs") && method == http.MethodPost) ||
		(len(rest) == 0 && (method == http.MethodPatch || method == http.MethodPut)))
}

// writesUnderRun reports any write to a run's routes (its log, the run, its response...):
// what the command sends there goes to the run's page in Port, so it is masked.
func writesUnderRun(method string, segs []string) bool {
	_, ok := runRoute(segs)
	return ok && (method == http.MethodPost || method == http.MethodPatch || method == http.MethodPut)
}

// runRoute matches the routes of one run, /actions/runs/{id} and
// /workflows/nodes/runs/{id}, and returns what follows the id.
func runRoute(segs []string) (rest []string, ok bool) {
	for _, prefix := range [][]string{{"actions", "runs"}, {"workflows", "nodes", "runs"}} {
		if len(segs) > len(prefix) && hasPrefixFold(segs, prefix) {
			return segs[len(prefix)+1:], true
		}
	}
	return nil, false
}

func hasPrefixFold(segs, prefix []string) bool {
	for i, p := range prefix {
		if !strings.EqualFold(segs[i], p) {
			return false
		}
	}
	return true
}

func (g *grant) allowedByDefault(method string, segs []string) bool {
	switch {
	case len(segs) >= 3 && segs[0] == "actions" && segs[1] == "runs" && segs[2] == g.runID:
		switch {
		case len(segs) == 3:
			return method == http.MethodGet || method == http.MethodPatch
		case len(segs) == 4 && segs[3] == "logs":
			return method == http.MethodGet || method == http.MethodPost
		}
	case g.blueprint != "" && len(segs) >= 2 && segs[0] == "blueprints" && segs[1] == g.blueprint:
		switch {
		case len(segs) == 2:
			return method == http.MethodGet
		case segs[2] == "entities":
			return len(segs) <= 4
		}
	}
	return false
}

// query is the query string that goes to Port: the command's, without any parameter that
// could name a run (run_id, run_id[], runId, RUN-ID, ...: Port's parsers may read any of them),
// and with the run's own run_id on an entity write, so Port ties the change to this run
// (seed: "Tying Entities to an action run") and the command cannot tie it to another.
func (g *grant) query(method string, segs []string, q url.Values) url.Values {
	for k := range q {
		if namesRun(k) {
			delete(q, k)
		}
	}
	if entityWrite(method, segs) {
		q.Set("run_id", g.runID)
	}
	return q
}

// namesRun reports a query key that spells run_id some way: case, '_' and '-' ignored, with
// anything after it (run_id[], run_id[0], run_ids).
func namesRun(key string) bool {
	k := strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(key))
	return strings.HasPrefix(k, "runid")
}

// entityWrite reports a request that creates or changes entities, which Port ties to a run
// given run_id: any method but GET on /blueprints/{bp}/entities and everything under it
// (create, upsert, bulk, update, delete, relations), whichever rule allowed it.
func entityWrite(method string, segs []string) bool {
	return method != http.MethodGet && len(segs) >= 3 && strings.EqualFold(segs[0], "blueprints") && strings.EqualFold(segs[2], "entities")
}

// hasAnyKey reports whether body may carry one of keys at its top level. A body that is
// not a JSON object cannot be checked, so it counts as carrying them: the proxy refuses what
// it cannot prove harmless. Keys are compared case-insensitively, as some JSON decoders do.
func hasAnyKey(body []byte, keys ...string) bool {
	if len(bytes.TrimSpace(body)) == 0 {
		return false
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return true
	}
	for k := range obj {
		for _, key := range keys {
			if strings.EqualFold(k, key) {
				return true
			}
		}
	}
	return false
}

// splitPath turns an escaped request path into decoded segments after "/v1". It refuses
// anything that could mean another route upstream: empty, "." and ".." segments, and
// segments that decode to a "/". One trailing slash is ignored.
func splitPath(escaped string) ([]string, bool) {
	rest, ok := strings.CutPrefix(escaped, "/v1/")
	if !ok {
		return nil, false
	}
	rest = strings.TrimSuffix(rest, "/")
	if rest == "" {
		return nil, false
	}
	parts := strings.Split(rest, "/")
	for i, part := range parts {
		s, err := url.PathUnescape(part)
		if err != nil || s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\\?#") {
			return nil, false
		}
		parts[i] = s
	}
	return parts, true
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

package portproxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/portapi"
	"github.com/port-runner/port-runner/internal/portproxy"
)

type fixture struct {
	emu    *emulator.Emulator
	emuURL string
	proxy  *portproxy.Proxy
	url    string // PORT_API_URL

	mu       sync.Mutex
	observed map[string]int // endpoint label -> attempts
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{observed: map[string]int{}}
	f.emu = emulator.New(emulator.Options{ClientID: "cid", ClientSecret: "secret", OrgID: "org"})
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := f.emu.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := srv.URL()
	f.emuURL = base
	api, err := portapi.New(portapi.Options{
		BaseURL: base, ClientID: "cid", ClientSecret: "secret", RequestsPerSecond: 1000,
		BaseBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		Logger: zaptest.NewLogger(t),
		Observe: func(endpoint string, _ int) {
			f.mu.Lock()
			f.observed[endpoint]++
			f.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.proxy = portproxy.New(forwardVia(api), portproxy.Options{Logger: zaptest.NewLogger(t)})
	f.url, _, err = f.proxy.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = srv.Wait() })
	if !strings.HasPrefix(f.url, "http://127.0.0.1:") || !strings.HasSuffix(f.url, "/v1") {
		t.Fatalf("proxy URL %q, want http://127.0.0.1:PORT/v1", f.url)
	}
	return f
}

// forwardVia is the agent's Forwarder: the request through the Port client (agent.New).
func forwardVia(api *portapi.Client) portproxy.Forwarder {
	return func(ctx context.Context, rq portproxy.Request) (portproxy.Response, error) {
		resp, err := api.Forward(ctx, portapi.ProxyRequest{
			Method: rq.Method, Path: rq.Path, Query: rq.Query,
			ContentType: rq.ContentType, Body: rq.Body, RunID: rq.RunID,
		})
		return portproxy.Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: resp.Body}, err
	}
}

type answer struct {
	status int
	body   map[string]any
	raw    string
}

// call sends method $PORT_API_URL+path with token (none if "") and body (none if "").
func (f *fixture) call(t *testing.T, token, method, path, body string) answer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, raw: string(raw)}
	_ = json.Unmarshal(raw, &a.body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s %s: Content-Type %q, want JSON", method, path, ct)
	}
	return a
}

func (a answer) want(t *testing.T, what string, status int, errCode string) {
	t.Helper()
	if a.status != status {
		t.Fatalf("%s: HTTP %d %s, want %d", what, a.status, a.raw, status)
	}
	if errCode != "" && (a.body["ok"] != false || a.body["error"] != errCode) {
		t.Fatalf("%s: body %s, want {\"ok\":false,\"error\":%q}", what, a.raw, errCode)
	}
}

// reached counts the requests the emulator got for method and path.
func (f *fixture) reached(method, path string) int {
	n := 0
	for _, r := range f.emu.Requests() {
		if r.Method == method && r.Path == path {
			n++
		}
	}
	return n
}

func TestTokenRequired(t *testing.T) {
	f := newFixture(t)
	f.emu.RegisterRun("r_1", "act")
	token, revoke := f.proxy.Register("r_1", "act", "microservice", nil)
	defer revoke()

	f.call(t, "", "GET", "/actions/runs/r_1", "").want(t, "no token", 401, "unauthorized")
	f.call(t, "not-a-token", "GET", "/actions/runs/r_1", "").want(t, "unknown token", 401, "unauthorized")
	f.call(t, strings.ToUpper(token), "GET", "/actions/runs/r_1", "").want(t, "altered token", 401, "unauthorized")
	if n := f.reached("GET", "/v1/actions/runs/r_1"); n != 0 {
		t.Fatalf("unauthenticated requests reached Port %d times", n)
	}
	if len(token) != 64 {
		t.Errorf("token %q: want 32 random bytes in hex", token)
	}
	a := f.call(t, token, "GET", "/actions/runs/r_1", "")
	a.want(t, "own run", 200, "")
	if run, _ := a.body["run"].(map[string]any); run["id"] != "r_1" {
		t.Fatalf("own run: %s", a.raw)
	}
}

func TestRevokedTokenGets401(t *testing.T) {
	f := newFixture(t)
	f.emu.RegisterRun("r_1", "act")
	token, revoke := f.proxy.Register("r_1", "act", "microservice", nil)
	other, revokeOther := f.proxy.Register("r_2", "act", "microservice", nil)
	defer revokeOther()
	f.call(t, token, "GET", "/actions/runs/r_1", "").want(t, "before revoke", 200, "")
	revoke()
	revoke() // idempotent
	f.call(t, token, "GET", "/actions/runs/r_1", "").want(t, "after revoke", 401, "unauthorized")
	if n := f.proxy.Tokens(); n != 1 {
		t.Errorf("%d tokens valid, want only the other run's", n)
	}
	f.call(t, other, "GET", "/actions/runs/r_1", "").want(t, "another run's token", 403, "forbidden")
}

func TestOwnRunOnly(t *testing.T) {
	f := newFixture(t)
	f.emu.RegisterRun("r_1", "act")
	f.emu.RegisterRun("r_2", "act")
	token, revoke := f.proxy.Register("r_1", "act", "microservice", nil)
	defer revoke()

	f.call(t, token, "POST", "/actions/runs/r_1/logs", `{"message":"from the script"}`).want(t, "own log", 200, "")
	f.call(t, token, "GET", "/actions/runs/r_1/logs", "").want(t, "own logs", 200, "")
	f.call(t, token, "PATCH", "/actions/runs/r_1", `{"statusLabel":"halfway"}`).want(t, "own label", 200, "")
	run, _ := f.emu.Run("r_1")
	if len(run.Logs) != 1 || run.Logs[0].Message != "from the script" || run.StatusLabel != "halfway" || run.Status != "IN_PROGRESS" {
		t.Fatalf("own run after the script's calls: %+v", run)
	}

	for _, c := range []struct{ method, path, body string }{
		{"GET", "/actions/runs/r_2", ""},
		{"POST", "/actions/runs/r_2/logs", `{"message":"x"}`},
		{"PATCH", "/actions/runs/r_2", `{"statusLabel":"x"}`},
		{"GET", "/actions/runs", ""},
		{"POST", "/actions/act/runs", `{"properties":{}}`},
		{"DELETE", "/actions/runs/r_1", ""},
		{"GET", "/blueprints/other/entities", ""},
		{"GET", "/entities/search", ""},
	} {
		a := f.call(t, token, c.method, c.path, c.body)
		a.want(t, c.method+" "+c.path, 403, "forbidden")
		if msg, _ := a.body["message"].(string); !strings.Contains(msg, "portAPI.allow") {
			t.Errorf("%s %s: message %q does not point at portAPI.allow", c.method, c.path, msg)
		}
	}
	if run, _ := f.emu.Run("r_2"); len(run.Logs) != 0 || run.StatusLabel != "" {
		t.Fatalf("another run was changed: %+v", run)
	}
}

func TestTerminationRefused(t *testing.T) {
	f := newFixture(t)
	f.emu.RegisterRun("r_1", "act")
	// Even an allow list that covers every route cannot let a script end a run.
	all, err := config.ParseAllowRules([]string{"/v1/**"})
	if err != nil {
		t.Fatal(err)
	}
	token, revoke := f.proxy.Register("r_1", "act", "microservice", all)
	defer revoke()
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/actions/runs/r_1/logs", `{"message":"done","terminationStatus":"SUCCESS"}`},
		{"POST", "/actions/runs/r_1/logs", `{"message":"done","TerminationStatus":"FAILURE"}`},
		{"POST", "/actions/runs/r_1/logs", `{"message":"done","terminationStatus":null}`},
		{"POST", "/actions/runs/r_1/logs", `not json, cannot be checked`},
		{"PATCH", "/actions/runs/r_1", `{"status":"SUCCESS"}`},
		{"POST", "/actions/runs/r_2/logs", `{"message":"x","terminationStatus":"SUCCESS"}`},
		{"POST", "/auth/access_token", `{"clientId":"cid","clientSecret":"secret"}`},
	} {
		f.call(t, token, c.method, c.path, c.body).want(t, c.method+" "+c.path+" "+c.body, 403, "forbidden")
	}
	if n := f.reached("POST", "/v1/actions/runs/r_1/logs") + f.reached("PATCH", "/v1/actions/runs/r_1"); n != 0 {
		t.Fatalf("refused requests reached Port %d times", n)
	}
	if run, _ := f.emu.Run("r_1"); run.Status != "IN_PROGRESS" || run.Terminations != 0 {
		t.Fatalf("run ended through the proxy: %+v", run)
	}
}

func TestEntityUpsertGetsRunID(t *testing.T) {
	f := newFixture(t)
	f.emu.RegisterRun("r_1", "act")
	f.emu.RegisterRun("r_2", "act")
	token, revoke := f.proxy.Register("r_1", "act", "microservice", nil)
	defer revoke()

	body := `{"identifier":"billing","title":"billing","properties":{"region":"eu-west-1"}}`
	a := f.call(t, token, "POST", "/blueprints/microservice/entities?upsert=true", body)
	a.want(t, "upsert", 201, "")
	if en, _ := a.body["entity"].(map[string]any); en["identifier"] != "billing" {
		t.Fatalf("upsert answer: %s", a.raw)
	}
	en, ok := f.emu.Entity("microservice", "billing")
	if !ok || en.RunID != "r_1" || en.Properties["region"] != "eu-west-1" {
		t.Fatalf("entity %+v (found %v), want it tied to r_1", en, ok)
	}
	// A run_id the script passes is replaced by its own: it cannot tie changes to another run.
	f.call(t, token, "POST", "/blueprints/microservice/entities?upsert=true&run_id=r_2", body).want(t, "upsert again", 200, "")
	if en, _ := f.emu.Entity("microservice", "billing"); strings.Join(en.RunIDs, ",") != "r_1,r_1" {
		t.Fatalf("entity run ids %q, want r_1 twice", en.RunIDs)
	}
	for _, r := range f.emu.Requests() {
		if r.Method == "POST" && r.Path == "/v1/blueprints/microservice/entities" && r.Query != "run_id=r_1&upsert=true" {
			t.Errorf("upsert reached Port with query %q", r.Query)
		}
	}

	f.call(t, token, "GET", "/blueprints/microservice/entities/billing", "").want(t, "get entity", 200, "")
	f.call(t, token, "GET", "/blueprints/microservice/entities", "").want(t, "list entities", 200, "")
	// Allowed, and Port's own answer comes back as is (the emulator has no blueprint routes).
	f.call(t, token, "GET", "/blueprints/microservice", "").want(t, "get blueprint", 404, "not_found")
	f.call(t, token, "POST", "/blueprints/microservice/entities", body).want(t, "create without upsert", 409, "identifier_taken")
	f.call(t, token, "POST", "/blueprints/service/entities?upsert=true", body).want(t, "other blueprint", 403, "forbidden")
	f.call(t, token, "DELETE", "/blueprints/microservice", "").want(t, "delete blueprint", 403, "forbidden")
	f.call(t, token, "DELETE", "/blueprints/microservice/entities/billing", "").want(t, "delete entity", 200, "")
	if q := lastQuery(f.emu, "DELETE", "/v1/blueprints/microservice/entities/billing"); q != "run_id=r_1" {
		t.Errorf("delete reached Port with query %q, want run_id=r_1", q)
	}

	f.mu.Lock()
	proxied := f.observed[portapi.EndpointProxy]
	f.mu.Unlock()
	if proxied != 7 {
		t.Errorf("%d attempts observed as %q, want 7 (one per forwarded request)", proxied, portapi.EndpointProxy)
	}

	// A run without a blueprint has no entity routes by default.
	t2, revoke2 := f.proxy.Register("r_2", "act", "", nil)
	defer revoke2()
	f.call(t, t2, "POST", "/blueprints/microservice/entities?upsert=true", body).want(t, "no blueprint", 403, "forbidden")
}

func lastQuery(emu *emulator.Emulator, method, path string) string {
	q := "(not reached)"
	for _, r := range emu.Requests() {
		if r.Method == method && r.Path == path {
			q = r.Query
		}
	}
	return q
}

func TestAllowPatterns(t *testing.T) {
	f := newFixture(t)
	f.emu.RegisterRun("r_1", "act")
	rules, err := config.ParseAllowRules([]string{"POST /v1/blueprints/service/entities", "GET /v1/blueprints/*"})
	if err != nil {
		t.Fatal(err)
	}
	token, revoke := f.proxy.Register("r_1", "act", "microservice", rules)
	defer revoke()

	f.call(t, token, "POST", "/blueprints/service/entities?upsert=true", `{"identifier":"svc"}`).want(t, "allowed upsert", 201, "")
	if en, ok := f.emu.Entity("service", "svc"); !ok || en.RunID != "r_1" {
		t.Fatalf("allow-listed upsert: %+v (found %v), want it tied to r_1", en, ok)
	}
	f.call(t, token, "GET", "/blueprints/service", "").want(t, "allowed GET", 404, "not_found")
	f.call(t, token, "GET", "/blueprints/service/entities/svc", "").want(t, "not listed: GET entity", 403, "forbidden")
	f.call(t, token, "DELETE", "/blueprints/service", "").want(t, "not listed: DELETE", 403, "forbidden")
	f.call(t, token, "GET", "/blueprints/service/entities", "").want(t, "not listed: GET entities", 403, "forbidden")
}

func TestLimitsAndPaths(t *testing.T) {
	f := newFixture(t)
	f.emu.RegisterRun("r_1", "act")
	token, revoke := f.proxy.Register("r_1", "act", "microservice", nil)
	defer revoke()

	big := `{"message":"` + strings.Repeat("x", portproxy.MaxBody) + `"}`
	f.call(t, token, "POST", "/actions/runs/r_1/logs", big).want(t, "over 1 MiB", 413, "payload_too_large")
	// Without Content-Length (chunked), the limit holds too.
	req, _ := http.NewRequest("POST", f.url+"/actions/runs/r_1/logs", io.MultiReader(strings.NewReader(big)))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("chunked body over 1 MiB: HTTP %d, want 413", resp.StatusCode)
	}
	if n := f.reached("POST", "/v1/actions/runs/r_1/logs"); n != 0 {
		t.Fatalf("oversized bodies reached Port %d times", n)
	}

	for _, p := range []string{
		"/blueprints/microservice/entities/..%2F..%2F..%2Factions%2Fruns%2Fr_2",
		"/blueprints/microservice/entities/a%2Fb",
		"/blueprints/microservice/entities/%2E%2E",
		"/blueprints//microservice/entities",
	} {
		f.call(t, token, "GET", p, "").want(t, "path "+p, 404, "not_found")
	}
	req, _ = http.NewRequest("OPTIONS", f.url+"/actions/runs/r_1", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Fatalf("OPTIONS: HTTP %d, want 405", resp.StatusCode)
	}
	// An entity id that needs escaping reaches Port escaped, as one segment.
	f.call(t, token, "POST", "/blueprints/microservice/entities?upsert=true", `{"identifier":"a b"}`).want(t, "upsert a b", 201, "")
	f.call(t, token, "GET", "/blueprints/microservice/entities/a%20b", "").want(t, "get a b", 200, "")
}

func TestRetriesAndRunEnd(t *testing.T) {
	f := newFixture(t)
	f.emu.RegisterRun("r_1", "act")
	token, revoke := f.proxy.Register("r_1", "act", "microservice", nil)
	// Port's 5xx answers are retried like the agent's own requests; the script sees the result.
	f.emu.FailNext(2, http.StatusServiceUnavailable)
	f.call(t, token, "POST", "/actions/runs/r_1/logs", `{"message":"retried"}`).want(t, "after two 503s", 200, "")
	if run, _ := f.emu.Run("r_1"); len(run.Logs) != 1 {
		t.Fatalf("logs %+v, want the one retried message", run.Logs)
	}

	// A request waiting on a Port outage ends when its run ends.
	f.emu.SetDown(true)
	done := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest("GET", f.url+"/actions/runs/r_1", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- answer{status: -1, raw: err.Error()}
			return
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		done <- answer{status: resp.StatusCode, raw: string(raw)}
	}()
	// Wait until the request is at Port (the emulator answered it 503 at least once).
	deadline := time.Now().Add(10 * time.Second)
	for f.reached("GET", "/v1/actions/runs/r_1") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the proxied request never reached Port")
		}
		time.Sleep(5 * time.Millisecond)
	}
	revoke()
	select {
	case a := <-done:
		if a.status != http.StatusServiceUnavailable || !bytes.Contains([]byte(a.raw), []byte("run_ended")) {
			t.Fatalf("request in flight at run end: HTTP %d %s, want 503 run_ended", a.status, a.raw)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a request in flight did not end with its run")
	}
}

// Every entity write route, bulk included, reaches Port with the run's own
// run_id and nothing else the command sent under a run_id-like name.
func TestRunIDForcedOnEveryEntityWrite(t *testing.T) {
	f := newFixture(t)
	f.emu.RegisterRun("r_1", "act")
	rules, err := config.ParseAllowRules([]string{"/v1/blueprints/*/entities/**"})
	if err != nil {
		t.Fatal(err)
	}
	token, revoke := f.proxy.Register("r_1", "act", "microservice", rules)
	defer revoke()
	body := `[{"identifier":"a"}]`
	for _, tc := range []struct{ method, path string }{
		{"POST", "/blueprints/microservice/entities/bulk"},
		{"POST", "/blueprints/microservice/entities/bulk?run_id=r_other"},
		{"POST", "/blueprints/microservice/entities?upsert=true&run_id[]=r_other"},
		{"POST", "/blueprints/microservice/entities?upsert=true&run_id%5B0%5D=r_other&RUN_ID=r_other&runId=r_other"},
		{"PATCH", "/blueprints/microservice/entities/a?run_id=r_other&run_id=r_1"},
		{"POST", "/blueprints/microservice/entities/a/relations?run-id=r_other"},
		{"DELETE", "/blueprints/microservice/entities/bulk?run_id[]=r_other"},
	} {
		_ = f.call(t, token, tc.method, tc.path, body)
		p, _, _ := strings.Cut(tc.path, "?")
		q := lastQuery(f.emu, tc.method, "/v1"+p)
		vals, err := url.ParseQuery(q)
		if err != nil {
			t.Fatalf("%s %s: query %q: %v", tc.method, tc.path, q, err)
		}
		if got := vals["run_id"]; len(got) != 1 || got[0] != "r_1" {
			t.Errorf("%s %s reached Port with query %q, want exactly run_id=r_1", tc.method, tc.path, q)
		}
		for k := range vals {
			if k != "run_id" && strings.Contains(strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(k)), "runid") {
				t.Errorf("%s %s: the command's %q reached Port (query %q)", tc.method, tc.path, k, q)
			}
		}
	}
	// Reads carry no client-sent run_id either.
	f.call(t, token, "GET", "/blueprints/microservice/entities?run_id=r_other", "").want(t, "list", 200, "")
	if q := lastQuery(f.emu, "GET", "/v1/blueprints/microservice/entities"); strings.Contains(q, "r_other") {
		t.Errorf("GET reached Port with query %q", q)
	}
}

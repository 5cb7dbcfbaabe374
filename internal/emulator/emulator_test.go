package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/port-runner/port-runner/test/harness/vectors"
)

const (
	testID     = "client-id"
	testSecret = vectors.Secret // TestVerifierAgainstVectors checks Port's vectors with it
)

// clock is an injectable Now so tests move time instead of sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type produced struct {
	topic      string
	key, value []byte
}

type fixture struct {
	e   *Emulator
	url string
	clk *clock

	mu  sync.Mutex
	out []produced
}

func newFixture(t *testing.T, mod func(*Options)) *fixture {
	t.Helper()
	f := &fixture{clk: &clock{t: time.Date(2026, 11, 29, 16, 0, 0, 0, time.UTC)}}
	opts := Options{
		ClientID: testID, ClientSecret: testSecret, OrgID: "org_demo",
		Now: f.clk.Now,
		Produce: func(_ context.Context, topic string, key, value []byte) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.out = append(f.out, produced{topic, bytes.Clone(key), bytes.Clone(value)})
			return nil
		},
	}
	if mod != nil {
		mod(&opts)
	}
	f.e = New(opts)
	srv := httptest.NewServer(f.e)
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

// messages returns what Produce captured so far.
func (f *fixture) messages() []produced {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]produced(nil), f.out...)
}

type resp struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

func (f *fixture) do(t *testing.T, method, path, tok string, body any) resp {
	t.Helper()
	r, err := f.try(method, path, tok, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// try is do for goroutines other than the test's: it returns the error.
func (f *fixture) try(method, path, tok string, body any) (resp, error) {
	return f.tryWith(nil, method, path, tok, body)
}

// tryWith is try sending header too.
func (f *fixture) tryWith(header http.Header, method, path, tok string, body any) (resp, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return resp{}, err
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, f.url+path, rd)
	if err != nil {
		return resp{}, err
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return resp{}, err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := resp{status: res.StatusCode, header: res.Header, raw: raw}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		return r, fmt.Errorf("%s %s: non-JSON answer %d %q", method, path, res.StatusCode, raw)
	}
	return r, nil
}

func (f *fixture) token(t *testing.T) string {
	t.Helper()
	r := f.do(t, "POST", "/v1/auth/access_token", "", map[string]string{"clientId": testID, "clientSecret": testSecret})
	if r.status != 200 || r.body["ok"] != true || r.body["tokenType"] != "Bearer" {
		t.Fatalf("auth: %d %s", r.status, r.raw)
	}
	return r.body["accessToken"].(string)
}

func want(t *testing.T, r resp, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	if code != "" && r.body["error"] != code {
		t.Fatalf("error %v, want %q: %s", r.body["error"], code, r.raw)
	}
	if status >= 400 && r.body["ok"] != false {
		t.Fatalf("error answer without ok:false: %s", r.raw)
	}
}

func TestAuth(t *testing.T) {
	f := newFixture(t, nil)
	f.e.RegisterRun("r_1", "act")

	r := f.do(t, "POST", "/v1/auth/access_token", "", map[string]string{"clientId": testID, "clientSecret": testSecret})
	want(t, r, 200, "")
	if r.body["expiresIn"] != float64(3*3600) {
		t.Fatalf("expiresIn %v", r.body["expiresIn"])
	}
	tok := r.body["accessToken"].(string)
	want(t, f.do(t, "GET", "/v1/actions/runs/r_1", tok, nil), 200, "")

	want(t, f.do(t, "POST", "/v1/auth/access_token", "", map[string]string{"clientId": testID, "clientSecret": "nope"}), 401, "unauthorized")
	want(t, f.do(t, "GET", "/v1/actions/runs/r_1", "", nil), 401, "unauthorized")
	want(t, f.do(t, "GET", "/v1/actions/runs/r_1", "forged", nil), 401, "unauthorized")

	// Time passes the TTL: the token dies, a new one works.
	f.clk.Add(3*time.Hour - time.Second)
	want(t, f.do(t, "GET", "/v1/actions/runs/r_1", tok, nil), 200, "")
	f.clk.Add(time.Second)
	want(t, f.do(t, "GET", "/v1/actions/runs/r_1", tok, nil), 401, "token_expired")

	tok2 := f.token(t)
	want(t, f.do(t, "GET", "/v1/actions/runs/r_1", tok2, nil), 200, "")
	f.e.ExpireTokens()
	want(t, f.do(t, "GET", "/v1/actions/runs/r_1", tok2, nil), 401, "token_expired")
	want(t, f.do(t, "GET", "/v1/actions/runs/r_1", f.token(t), nil), 200, "")

	reqs := f.e.Requests()
	if last := reqs[len(reqs)-1]; last.Token == "" || last.Path != "/v1/actions/runs/r_1" || last.Status != 200 {
		t.Fatalf("last request recorded as %+v", last)
	}
}

func TestLogsAndTermination(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.token(t)
	f.e.RegisterRun("r_1", "act")

	want(t, f.do(t, "POST", "/v1/actions/runs/r_1/logs", tok, map[string]any{"message": "line 1\nline 2\n"}), 200, "")
	want(t, f.do(t, "POST", "/v1/actions/runs/r_1/logs", tok, map[string]any{"message": "half way", "statusLabel": "building"}), 200, "")
	r := f.do(t, "GET", "/v1/actions/runs/r_1/logs", tok, nil)
	want(t, r, 200, "")
	logs := r.body["runLogs"].([]any)
	if len(logs) != 2 || logs[0].(map[string]any)["message"] != "line 1\nline 2\n" || logs[1].(map[string]any)["createdAt"] == nil {
		t.Fatalf("runLogs %s", r.raw)
	}

	want(t, f.do(t, "POST", "/v1/actions/runs/r_1/logs", tok, map[string]any{"message": "done", "terminationStatus": "SUCCESS", "statusLabel": "Completed"}), 200, "")
	want(t, f.do(t, "POST", "/v1/actions/runs/r_1/logs", tok, map[string]any{"message": "again", "terminationStatus": "FAILURE"}), 409, "run_already_terminated")
	want(t, f.do(t, "POST", "/v1/actions/runs/r_1/logs", tok, map[string]any{"message": "late line"}), 409, "run_already_terminated")
	want(t, f.do(t, "PATCH", "/v1/actions/runs/r_1", tok, map[string]any{"summary": "late"}), 409, "run_already_terminated")

	run, _ := f.e.Run("r_1")
	if run.Status != "SUCCESS" || run.StatusLabel != "Completed" || run.EndedAt == nil ||
		run.Terminations != 1 || run.RejectedTerminations != 1 || len(run.Logs) != 3 || run.Summary != "" {
		t.Fatalf("run after termination: %+v", run)
	}
	if run.Logs[2].TerminationStatus != "SUCCESS" {
		t.Fatalf("closing log %+v", run.Logs[2])
	}
	g := f.do(t, "GET", "/v1/actions/runs/r_1", tok, nil)
	wr := g.body["run"].(map[string]any)
	if wr["status"] != "SUCCESS" || wr["endedAt"] == nil || wr["source"] != "API" {
		t.Fatalf("GET run %s", g.raw)
	}
	want(t, f.do(t, "GET", "/v1/actions/runs/r_nope", tok, nil), 404, "not_found")
	want(t, f.do(t, "POST", "/v1/actions/runs/r_nope/logs", tok, map[string]any{"message": "x"}), 404, "not_found")
}

func TestPatch(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.token(t)
	f.e.RegisterRun("r_1", "act")

	want(t, f.do(t, "PATCH", "/v1/actions/runs/r_1", tok, map[string]any{"statusLabel": "one", "link": []string{"a", "b"}, "summary": "s1", "externalRunId": "x1"}), 200, "")
	r := f.do(t, "PATCH", "/v1/actions/runs/r_1", tok, map[string]any{"statusLabel": "two", "link": []string{"c"}})
	want(t, r, 200, "")
	if wr := r.body["run"].(map[string]any); wr["statusLabel"] != "two" || wr["summary"] != "s1" {
		t.Fatalf("PATCH answer %s", r.raw)
	}
	run, _ := f.e.Run("r_1")
	if run.StatusLabel != "two" || len(run.Link) != 1 || run.Link[0] != "c" || run.Summary != "s1" || run.ExternalRunID != "x1" || run.Status != "IN_PROGRESS" {
		t.Fatalf("after PATCH: %+v", run)
	}

	want(t, f.do(t, "PATCH", "/v1/actions/runs/r_1", tok, map[string]any{"statusLable": "typo"}), 422, "invalid_request")
	want(t, f.do(t, "PATCH", "/v1/actions/runs/r_1", tok, map[string]any{"status": "DONE"}), 422, "invalid_request")
	want(t, f.do(t, "PATCH", "/v1/actions/runs/r_1", tok, map[string]any{"status": "IN_PROGRESS"}), 422, "invalid_request")
	want(t, f.do(t, "PATCH", "/v1/actions/runs/r_1", tok, `{"link":"not-a-list"}`), 422, "invalid_request")
	want(t, f.do(t, "PATCH", "/v1/actions/runs/r_1", tok, `{`), 422, "invalid_request")

	want(t, f.do(t, "PATCH", "/v1/actions/runs/r_1", tok, map[string]any{"status": "FAILURE", "statusLabel": "Wrong personal token provided"}), 200, "")
	want(t, f.do(t, "PATCH", "/v1/actions/runs/r_1", tok, map[string]any{"status": "SUCCESS"}), 409, "run_already_terminated")
	run, _ = f.e.Run("r_1")
	if run.Status != "FAILURE" || run.Terminations != 1 || run.RejectedTerminations != 1 || run.EndedAt == nil {
		t.Fatalf("after PATCH status: %+v", run)
	}
}

func TestLogValidation(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.token(t)
	f.e.RegisterRun("r_1", "act")
	path := "/v1/actions/runs/r_1/logs"

	want(t, f.do(t, "POST", path, tok, map[string]any{}), 422, "invalid_request")
	want(t, f.do(t, "POST", path, tok, map[string]any{"message": 42}), 422, "invalid_request")
	want(t, f.do(t, "POST", path, tok, `{"message":null}`), 422, "invalid_request")
	want(t, f.do(t, "POST", path, tok, map[string]any{"message": "x", "level": "info"}), 422, "invalid_request")
	want(t, f.do(t, "POST", path, tok, map[string]any{"message": "x", "terminationStatus": "DONE"}), 422, "invalid_request")
	want(t, f.do(t, "POST", path, tok, ""), 422, "invalid_request")

	// Exactly one byte over 1 MiB is refused; just under it is accepted.
	mk := func(size int) []byte {
		pre, post := `{"message":"`, `"}`
		return []byte(pre + strings.Repeat("a", size-len(pre)-len(post)) + post)
	}
	over := mk(1<<20 + 1)
	want(t, f.do(t, "POST", path, tok, over), 413, "payload_too_large")
	want(t, f.do(t, "POST", path, tok, mk(1<<20-16)), 200, "")
	want(t, f.do(t, "POST", path, tok, mk(1<<20)), 200, "")

	run, _ := f.e.Run("r_1")
	if len(run.Logs) != 2 || run.Status != "IN_PROGRESS" {
		t.Fatalf("only the two valid logs count: %d logs, %s", len(run.Logs), run.Status)
	}
}

func TestBudget(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Budget = 3; o.BudgetWindow = time.Minute })
	f.e.RegisterRun("r_1", "act")
	f.clk.Add(10 * time.Second) // windows are aligned to the epoch, not to the first request
	reset := strconv.FormatInt(f.clk.Now().Truncate(time.Minute).Add(time.Minute).Unix(), 10)

	tok := f.token(t)                                     // 1
	r := f.do(t, "GET", "/v1/actions/runs/r_1", tok, nil) // 2
	want(t, r, 200, "")
	if r.header.Get("x-ratelimit-limit") != "3" || r.header.Get("x-ratelimit-remaining") != "1" ||
		r.header.Get("x-ratelimit-reset") != reset || r.header.Get("x-ratelimit-period") != "60" {
		t.Fatalf("rate headers %v, want reset %s", r.header, reset)
	}
	f.clk.Add(10*time.Second + time.Millisecond)
	want(t, f.do(t, "GET", "/v1/actions/runs/r_1", tok, nil), 200, "") // 3
	r = f.do(t, "GET", "/v1/actions/runs/r_1", tok, nil)               // 4
	want(t, r, 429, "too_many_requests")
	if r.header.Get("Retry-After") != "40" || r.header.Get("x-ratelimit-remaining") != "0" || r.header.Get("x-ratelimit-reset") != reset || r.header.Get("x-ratelimit-limit") != "3" {
		t.Fatalf("429 headers %v", r.header)
	}
	// Auth counts too.
	want(t, f.do(t, "POST", "/v1/auth/access_token", "", map[string]string{"clientId": testID, "clientSecret": testSecret}), 429, "")

	// A change applies from the next window: this one keeps what its answers promised.
	f.e.SetBudget(5, 10*time.Second)
	want(t, f.do(t, "GET", "/v1/actions/runs/r_1", tok, nil), 429, "")
	f.clk.Add(40 * time.Second) // next window
	r = f.do(t, "GET", "/v1/actions/runs/r_1", tok, nil)
	want(t, r, 200, "")
	next := strconv.FormatInt(f.clk.Now().Truncate(10*time.Second).Add(10*time.Second).Unix(), 10)
	if r.header.Get("x-ratelimit-limit") != "5" || r.header.Get("x-ratelimit-remaining") != "4" ||
		r.header.Get("x-ratelimit-reset") != next || r.header.Get("x-ratelimit-period") != "10" {
		t.Fatalf("new window headers %v, want reset %s", r.header, next)
	}

	reqs := f.e.Requests()
	if len(reqs) != 7 || reqs[3].Status != 429 || reqs[4].Status != 429 || reqs[5].Status != 429 {
		t.Fatalf("429s must be recorded: %+v", reqs)
	}
	if n := f.e.Rejected(); n != 3 {
		t.Fatalf("Rejected() = %d, want 3", n)
	}
}

func TestNoBudgetNoHeaders(t *testing.T) {
	f := newFixture(t, nil)
	f.token(t)
	r := f.do(t, "POST", "/v1/auth/access_token", "", map[string]string{"clientId": testID, "clientSecret": testSecret})
	if r.header.Get("x-ratelimit-limit") != "" {
		t.Fatal("unlimited emulator sent rate headers")
	}
}

func TestRunsOrder(t *testing.T) {
	f := newFixture(t, nil)
	var ids []string
	for i := range 5 {
		r, err := f.e.CreateRun(context.Background(), fmt.Sprint("a", i), CreateRunRequest{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	for i, r := range f.e.Runs() {
		if r.ID != ids[i] {
			t.Fatalf("Runs()[%d] = %s, want %s", i, r.ID, ids[i])
		}
	}
}

func TestWaitRun(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.token(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	done := make(chan RunState, 1)
	go func() {
		// The run does not exist yet: WaitRun must also see its creation.
		r, err := f.e.WaitRun(ctx, "r_w", func(r RunState) bool { return r.EndedAt != nil })
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	f.e.RegisterRun("r_w", "act")
	go func() {
		if r, err := f.try("POST", "/v1/actions/runs/r_w/logs", tok, map[string]any{"message": "bye", "terminationStatus": "FAILURE", "statusLabel": "exit code 3"}); err != nil || r.status != 200 {
			t.Errorf("closing log: %v %s", err, r.raw)
		}
	}()
	select {
	case r := <-done:
		if r.Status != "FAILURE" || r.StatusLabel != "exit code 3" {
			t.Fatalf("WaitRun returned %+v", r)
		}
	case <-ctx.Done():
		t.Fatal("WaitRun did not return")
	}

	short, c2 := context.WithCancel(context.Background())
	c2()
	if _, err := f.e.WaitRun(short, "r_w", func(RunState) bool { return false }); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitRun on a cancelled ctx: %v", err)
	}
}

func TestFaults(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.token(t)
	f.e.RegisterRun("r_1", "act")

	f.e.FailNext(2, 503)
	// Auth is not an /v1/actions path: unaffected.
	f.token(t)
	want(t, f.do(t, "POST", "/v1/actions/runs/r_1/logs", tok, map[string]any{"message": "x"}), 503, "internal_error")
	want(t, f.do(t, "GET", "/v1/actions/runs/r_1", "", nil), 503, "internal_error") // before auth
	want(t, f.do(t, "POST", "/v1/actions/runs/r_1/logs", tok, map[string]any{"message": "y"}), 200, "")
	if run, _ := f.e.Run("r_1"); len(run.Logs) != 1 || run.Logs[0].Message != "y" {
		t.Fatalf("faulted request changed state: %+v", run.Logs)
	}

	f.e.SetDown(true)
	want(t, f.do(t, "POST", "/v1/auth/access_token", "", map[string]string{"clientId": testID, "clientSecret": testSecret}), 503, "internal_error")
	want(t, f.do(t, "GET", "/v1/actions/runs/r_1", tok, nil), 503, "internal_error")
	f.e.SetDown(false)
	want(t, f.do(t, "GET", "/v1/actions/runs/r_1", tok, nil), 200, "")

	var statuses []int
	for _, r := range f.e.Requests() {
		statuses = append(statuses, r.Status)
	}
	if fmt.Sprint(statuses) != "[200 200 503 503 200 503 503 200]" {
		t.Fatalf("recorded statuses %v", statuses)
	}
}

func TestRouting(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.token(t)
	want(t, f.do(t, "GET", "/v1/nothing", tok, nil), 404, "not_found")
	r := f.do(t, "DELETE", "/v1/actions/runs/r_1", tok, nil)
	want(t, r, 405, "method_not_allowed")
	if r.header.Get("Allow") == "" {
		t.Fatal("405 without Allow")
	}
	want(t, f.do(t, "GET", "/v1/auth/access_token", "", nil), 405, "method_not_allowed")
}

func TestServe(t *testing.T) {
	e := New(Options{ClientID: testID, ClientSecret: testSecret, OrgID: "org_demo"})
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := e.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.Post(srv.URL()+"/v1/auth/access_token", "application/json",
		strings.NewReader(`{"clientId":"client-id","clientSecret":"`+testSecret+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("auth over Serve: %d", res.StatusCode)
	}
	cancel()
	if err := srv.Wait(); err != nil {
		t.Fatalf("wait: %v", err)
	}
	if err := srv.Wait(); err != nil {
		t.Fatalf("second wait: %v", err)
	}
}

func TestConcurrentClients(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.token(t)
	f.e.RegisterRun("r_c", "act")
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if r, err := f.try("POST", "/v1/actions/runs/r_c/logs", tok, map[string]any{"message": fmt.Sprint(i)}); err != nil || r.status != 200 {
				t.Errorf("log %d: %v %s", i, err, r.raw)
			}
			f.e.Runs()
			f.e.Requests()
		})
	}
	wg.Wait()
	if run, _ := f.e.Run("r_c"); len(run.Logs) != 20 {
		t.Fatalf("%d logs", len(run.Logs))
	}
}

func TestMaxRequestsKeepsTheLatest(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.MaxRequests = 2 })
	for _, p := range []string{"/v1/first", "/v1/second", "/v1/third"} {
		f.do(t, "GET", p, "", nil)
	}
	reqs := f.e.Requests()
	if len(reqs) != 2 || reqs[0].Path != "/v1/second" || reqs[1].Path != "/v1/third" {
		t.Fatalf("requests kept: %+v, want the last two", reqs)
	}
}

// TestServerRefusesThenAccepts: an outage where Port cannot be reached at all, then the same
// address answers again, with the state kept.
func TestServerRefusesThenAccepts(t *testing.T) {
	e := New(Options{ClientID: testID, ClientSecret: testSecret, OrgID: "org_demo"})
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := e.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.RegisterRun("r_1", "act")
	get := func() (*http.Response, error) {
		// A fresh connection each time, so a kept-alive one cannot hide the outage.
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		return c.Get(srv.URL() + "/v1/actions/runs/r_1")
	}
	resp, err := get()
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	srv.Refuse()
	if _, err := get(); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("during the outage: %v, want connection refused", err)
	}
	if err := srv.Accept(); err != nil {
		t.Fatal(err)
	}
	resp, err = get()
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized { // no token: routed, state intact
		t.Fatalf("after the outage: %d", resp.StatusCode)
	}
	cancel()
	if err := srv.Wait(); err != nil {
		t.Fatal(err)
	}
}

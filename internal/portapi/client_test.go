package portapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/time/rate"
)

// fakePort is a minimal Port API: it hands out tokens on /v1/auth/access_token
// and passes every other request (with a valid bearer token) to api.
type fakePort struct {
	t         *testing.T
	srv       *httptest.Server
	authCalls atomic.Int32

	mu        sync.Mutex
	tokens    []string // handed out in order; the last one repeats
	expiresIn int
	authCode  int           // 0: 200
	authGate  chan struct{} // if set, auth waits for it to close
	validTok  func(string) bool
	api       func(w http.ResponseWriter, r *http.Request, body []byte)
	requests  []recorded
}

type recorded struct {
	method, path, auth, ctype, ua string
	body                          []byte
}

func newFakePort(t *testing.T) *fakePort {
	f := &fakePort{t: t, tokens: []string{"tok1"}, expiresIn: 10800}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakePort) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.URL.Path == "/v1/auth/access_token" {
		n := int(f.authCalls.Add(1))
		f.mu.Lock()
		gate, code := f.authGate, f.authCode
		tok := f.tokens[min(n, len(f.tokens))-1]
		exp := f.expiresIn
		f.mu.Unlock()
		if gate != nil {
			<-gate
		}
		var creds struct{ ClientID, ClientSecret string }
		if err := json.Unmarshal(body, &creds); err != nil || creds.ClientID != "id" || creds.ClientSecret != "secret" {
			code = http.StatusUnauthorized
		}
		if code != 0 && code != http.StatusOK {
			w.WriteHeader(code)
			fmt.Fprint(w, `{"ok":false,"error":"unauthorized"}`)
			return
		}
		fmt.Fprintf(w, `{"ok":true,"accessToken":%q,"expiresIn":%d,"tokenType":"Bearer"}`, tok, exp)
		return
	}
	f.mu.Lock()
	f.requests = append(f.requests, recorded{r.Method, r.URL.EscapedPath(), r.Header.Get("Authorization"),
		r.Header.Get("Content-Type"), r.Header.Get("User-Agent"), body})
	valid, api := f.validTok, f.api
	f.mu.Unlock()
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if valid == nil {
		valid = func(s string) bool { return s != "" }
	}
	if !valid(tok) {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if api == nil {
		fmt.Fprint(w, `{"ok":true}`)
		return
	}
	api(w, r, body)
}

func (f *fakePort) recorded() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.requests...)
}

type observed struct {
	mu    sync.Mutex
	calls []string
}

func (o *observed) fn(endpoint string, code int) {
	o.mu.Lock()
	o.calls = append(o.calls, fmt.Sprintf("%s:%d", endpoint, code))
	o.mu.Unlock()
}

func (o *observed) get() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.calls...)
}

func newTestClient(t *testing.T, f *fakePort, mod func(*Options)) (*Client, *observed) {
	t.Helper()
	obs := &observed{}
	opts := Options{
		BaseURL:      f.srv.URL,
		ClientID:     "id",
		ClientSecret: "secret",
		BaseBackoff:  time.Millisecond,
		MaxBackoff:   5 * time.Millisecond,
		Observe:      obs.fn,
	}
	if mod != nil {
		mod(&opts)
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c, obs
}

// recordSleeps replaces the backoff wait with one that records the
// requested duration and returns at once. The scheduler's clock moves on by
// what was slept, so the replica-wide hold of a Retry-After is over too.
func recordSleeps(c *Client) func() []time.Duration {
	var mu sync.Mutex
	var waits []time.Duration
	var slept atomic.Int64
	c.sched.mu.Lock()
	c.sched.now = func() time.Time { return time.Now().Add(time.Duration(slept.Load())) }
	c.sched.mu.Unlock()
	c.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		waits = append(waits, d)
		mu.Unlock()
		slept.Add(int64(d))
		return ctx.Err()
	}
	return func() []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return append([]time.Duration(nil), waits...)
	}
}

// eventually polls cond; it is a wait for a state, not a timing assumption.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestNewValidates(t *testing.T) {
	for _, o := range []Options{
		{BaseURL: "", ClientID: "a", ClientSecret: "b"},
		{BaseURL: "api.getport.io", ClientID: "a", ClientSecret: "b"},
		{BaseURL: "ftp://api.getport.io", ClientID: "a", ClientSecret: "b"},
		{BaseURL: "https://api.getport.io", ClientID: "", ClientSecret: "b"},
		{BaseURL: "https://api.getport.io", ClientID: "a", ClientSecret: ""},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) succeeded, want error", o)
		}
	}
	c, err := New(Options{BaseURL: "https://api.getport.io/v1/", ClientID: "a", ClientSecret: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if c.base != "https://api.getport.io" {
		t.Errorf("base = %q", c.base)
	}
}

func TestTokenReusedAndHeaders(t *testing.T) {
	f := newFakePort(t)
	c, _ := newTestClient(t, f, nil)
	ctx := context.Background()
	if c.TokenValid() {
		t.Fatal("TokenValid before any request")
	}
	for i := 0; i < 20; i++ {
		if err := c.AppendLog(ctx, "r_1", "line"); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.authCalls.Load(); n != 1 {
		t.Fatalf("auth requests = %d, want 1", n)
	}
	if !c.TokenValid() {
		t.Fatal("TokenValid false after a successful request")
	}
	reqs := f.recorded()
	if len(reqs) != 20 {
		t.Fatalf("requests = %d", len(reqs))
	}
	r := reqs[0]
	if r.method != http.MethodPost || r.path != "/v1/actions/runs/r_1/logs" || r.auth != "Bearer tok1" ||
		r.ctype != "application/json" || r.ua != "port-runner" {
		t.Fatalf("request = %+v", r)
	}
}

func TestTokenRefreshedBeforeExpiry(t *testing.T) {
	f := newFakePort(t)
	f.tokens = []string{"tok1", "tok2"}
	f.expiresIn = 3600
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	c, _ := newTestClient(t, f, func(o *Options) { o.Now = clock })
	ctx := context.Background()

	tok, err := c.Token(ctx)
	if err != nil || tok != "tok1" {
		t.Fatalf("Token = %q, %v", tok, err)
	}
	// 10% of 1h is 6 minutes, capped at 5: refresh from 55 minutes on.
	advance(54 * time.Minute)
	if tok, _ := c.Token(ctx); tok != "tok1" || f.authCalls.Load() != 1 {
		t.Fatalf("refreshed too early: %q, %d auth calls", tok, f.authCalls.Load())
	}
	advance(2 * time.Minute)
	if !c.TokenValid() {
		t.Fatal("token within its lifetime reported invalid")
	}
	if err := c.AppendLog(ctx, "r_1", "x"); err != nil {
		t.Fatal(err)
	}
	if n := f.authCalls.Load(); n != 2 {
		t.Fatalf("auth requests = %d, want 2", n)
	}
	if got := f.recorded()[0].auth; got != "Bearer tok2" {
		t.Fatalf("used %q, want the refreshed token", got)
	}
	advance(2 * time.Hour)
	if c.TokenValid() {
		t.Fatal("expired token reported valid")
	}
}

func TestShortLivedTokenMargin(t *testing.T) {
	f := newFakePort(t)
	f.expiresIn = 100 // margin: 10% = 10s
	var mu sync.Mutex
	now := time.Unix(1e9, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	c, _ := newTestClient(t, f, func(o *Options) { o.Now = clock })
	ctx := context.Background()
	c.Token(ctx)
	mu.Lock()
	now = now.Add(89 * time.Second)
	mu.Unlock()
	c.Token(ctx)
	if n := f.authCalls.Load(); n != 1 {
		t.Fatalf("auth requests = %d at 89s, want 1", n)
	}
	mu.Lock()
	now = now.Add(2 * time.Second)
	mu.Unlock()
	c.Token(ctx)
	if n := f.authCalls.Load(); n != 2 {
		t.Fatalf("auth requests = %d at 91s, want 2", n)
	}
}

func TestRefreshOn401(t *testing.T) {
	f := newFakePort(t)
	f.tokens = []string{"revoked", "tok2"}
	f.validTok = func(s string) bool { return s == "tok2" }
	c, obs := newTestClient(t, f, nil)
	if err := c.AppendLog(context.Background(), "r_1", "x"); err != nil {
		t.Fatal(err)
	}
	if n := f.authCalls.Load(); n != 2 {
		t.Fatalf("auth requests = %d, want 2", n)
	}
	want := "auth:200 run_logs:401 auth:200 run_logs:200"
	if got := strings.Join(obs.get(), " "); got != want {
		t.Fatalf("observed %q, want %q", got, want)
	}
}

func TestSecond401IsPermanent(t *testing.T) {
	f := newFakePort(t)
	f.validTok = func(string) bool { return false }
	c, _ := newTestClient(t, f, nil)
	err := c.AppendLog(context.Background(), "r_1", "x")
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusUnauthorized {
		t.Fatalf("err = %v, want APIError 401", err)
	}
	if n := f.authCalls.Load(); n != 2 {
		t.Fatalf("auth requests = %d, want 2", n)
	}
	if len(f.recorded()) != 2 {
		t.Fatalf("log requests = %d, want 2", len(f.recorded()))
	}
}

func TestConcurrentCallersShareOneAuth(t *testing.T) {
	f := newFakePort(t)
	gate := make(chan struct{})
	f.authGate = gate
	c, _ := newTestClient(t, f, nil)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- c.AppendLog(context.Background(), "r_1", "x")
		}()
	}
	eventually(t, "callers waiting for the token", func() bool {
		c.tok.mu.Lock()
		defer c.tok.mu.Unlock()
		return c.tok.waiting == n-1
	})
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := f.authCalls.Load(); got != 1 {
		t.Fatalf("auth requests = %d, want 1", got)
	}
}

func TestWrongCredentials(t *testing.T) {
	f := newFakePort(t)
	c, obs := newTestClient(t, f, func(o *Options) { o.ClientSecret = "wrong" })
	err := c.AppendLog(context.Background(), "r_1", "x")
	if err == nil || !strings.Contains(err.Error(), "client credentials were rejected") {
		t.Fatalf("err = %v", err)
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.Endpoint != EndpointAuth || ae.StatusCode != 401 {
		t.Fatalf("err = %v, want auth APIError", err)
	}
	if got := obs.get(); len(got) != 1 {
		t.Fatalf("observed %v, want one auth attempt", got)
	}
	if c.TokenValid() {
		t.Fatal("TokenValid after rejected credentials")
	}
}

// statusSequence answers with the given codes (and headers) in order, then 200.
func statusSequence(steps ...func(w http.ResponseWriter)) func(http.ResponseWriter, *http.Request, []byte) {
	var mu sync.Mutex
	i := 0
	return func(w http.ResponseWriter, r *http.Request, _ []byte) {
		mu.Lock()
		k := i
		i++
		mu.Unlock()
		if k < len(steps) {
			steps[k](w)
			return
		}
		fmt.Fprint(w, `{"ok":true}`)
	}
}

func status(code int, hdr ...string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.WriteHeader(code)
		fmt.Fprint(w, `{"ok":false}`)
	}
}

func TestRetryHonoursServerWaits(t *testing.T) {
	date := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	for _, tc := range []struct {
		name     string
		step     func(http.ResponseWriter)
		min, max time.Duration
	}{
		{"retry-after seconds", status(429, "Retry-After", "1"), time.Second, time.Second + 5*time.Millisecond},
		{"retry-after date", status(503, "Retry-After", date), 80 * time.Second, 91 * time.Second},
		{"x-ratelimit-reset", status(429, "X-Ratelimit-Reset", "7", "X-Ratelimit-Remaining", "0"), 7 * time.Second, 7*time.Second + 5*time.Millisecond},
		{"reset ignored on 503", status(503, "X-Ratelimit-Reset", "250"), 0, 5 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakePort(t)
			f.api = statusSequence(tc.step)
			c, _ := newTestClient(t, f, nil)
			waits := recordSleeps(c)
			if err := c.AppendLog(context.Background(), "r_1", "x"); err != nil {
				t.Fatal(err)
			}
			w := waits()
			if len(w) != 1 || w[0] < tc.min || w[0] > tc.max {
				t.Fatalf("waits = %v, want one in [%v, %v]", w, tc.min, tc.max)
			}
			if n := len(f.recorded()); n != 2 {
				t.Fatalf("requests = %d, want 2", n)
			}
		})
	}
}

func TestRetry5xxThenSuccess(t *testing.T) {
	f := newFakePort(t)
	f.api = statusSequence(status(503), status(503), status(503))
	c, obs := newTestClient(t, f, nil)
	if err := c.AppendLog(context.Background(), "r_1", "x"); err != nil {
		t.Fatal(err)
	}
	want := "auth:200 run_logs:503 run_logs:503 run_logs:503 run_logs:200"
	if got := strings.Join(obs.get(), " "); got != want {
		t.Fatalf("observed %q, want %q", got, want)
	}
	reqs := f.recorded()
	for _, r := range reqs {
		if string(r.body) != `{"message":"x"}` {
			t.Fatalf("retry body = %q", r.body)
		}
	}
}

func TestRetryNetworkError(t *testing.T) {
	f := newFakePort(t)
	f.api = firstAnswerCut(t, "")
	c, obs := newTestClient(t, f, nil)
	if err := c.AppendLog(context.Background(), "r_1", "x"); err != nil {
		t.Fatal(err)
	}
	want := "auth:200 run_logs:0 run_logs:200"
	if got := strings.Join(obs.get(), " "); got != want {
		t.Fatalf("observed %q, want %q", got, want)
	}
}

func TestPermanent4xx(t *testing.T) {
	f := newFakePort(t)
	long := strings.Repeat("e", 2000)
	f.api = func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"ok":false,"error":"invalid_request","message":"`+long+`"}`)
	}
	c, _ := newTestClient(t, f, nil)
	waits := recordSleeps(c)
	err := c.AppendLog(context.Background(), "r_9", "x")
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != 400 || ae.Endpoint != EndpointRunLogs || !strings.Contains(ae.Body, "invalid_request") {
		t.Fatalf("err = %v", err)
	}
	msg := err.Error()
	for _, s := range []string{"post logs for run r_9", "run_logs", "400", "invalid_request"} {
		if !strings.Contains(msg, s) {
			t.Errorf("error %q lacks %q", msg, s)
		}
	}
	if len(msg) > 700 {
		t.Errorf("error body not truncated: %d bytes", len(msg))
	}
	if len(waits()) != 0 || len(f.recorded()) != 1 {
		t.Fatalf("a 400 was retried")
	}
}

func Test413IsPermanent(t *testing.T) {
	f := newFakePort(t)
	f.api = func(w http.ResponseWriter, r *http.Request, _ []byte) { w.WriteHeader(413) }
	c, _ := newTestClient(t, f, nil)
	err := c.AppendLog(context.Background(), "r_1", "x")
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != 413 || len(f.recorded()) != 1 {
		t.Fatalf("err = %v after %d requests", err, len(f.recorded()))
	}
}

func TestCancelStopsRetrying(t *testing.T) {
	f := newFakePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int32
	f.api = func(w http.ResponseWriter, r *http.Request, _ []byte) {
		if n.Add(1) == 5 {
			cancel()
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	c, _ := newTestClient(t, f, nil)
	err := c.AppendLog(ctx, "r_1", "x")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if got := n.Load(); got != 5 {
		t.Fatalf("requests = %d, want 5", got)
	}
}

func TestCloseRunBody(t *testing.T) {
	f := newFakePort(t)
	c, obs := newTestClient(t, f, nil)
	closed, err := c.CloseRun(context.Background(), "r_1", Closing{Message: "bye\n", TerminationStatus: "FAILURE", StatusLabel: "exit code 3"})
	if err != nil || closed {
		t.Fatalf("CloseRun = %v, %v", closed, err)
	}
	got := string(f.recorded()[0].body)
	want := `{"message":"bye\n","terminationStatus":"FAILURE","statusLabel":"exit code 3"}`
	if got != want {
		t.Fatalf("body %s, want %s", got, want)
	}
	if strings.Join(obs.get(), " ") != "auth:200 run_logs:200" {
		t.Fatalf("observed %v", obs.get())
	}
}

func TestCloseRunAlreadyClosed(t *testing.T) {
	for _, tc := range []struct {
		code         int
		runStatus    string
		wantClosed   bool
		wantAPIError bool
	}{
		{409, "SUCCESS", true, false},
		{422, "FAILURE", true, false},
		{400, "SUCCESS", true, false},
		{409, "IN_PROGRESS", false, true},
	} {
		t.Run(fmt.Sprintf("%d-%s", tc.code, tc.runStatus), func(t *testing.T) {
			f := newFakePort(t)
			f.api = func(w http.ResponseWriter, r *http.Request, _ []byte) {
				if r.Method == http.MethodGet {
					fmt.Fprintf(w, `{"ok":true,"run":{"id":"r_1","status":%q,"endedAt":"2026-01-01T00:00:00.000Z","action":"deploy"}}`, tc.runStatus)
					return
				}
				w.WriteHeader(tc.code)
				fmt.Fprint(w, `{"ok":false,"error":"run_already_terminated"}`)
			}
			c, obs := newTestClient(t, f, nil)
			closed, err := c.CloseRun(context.Background(), "r_1", Closing{Message: "m", TerminationStatus: "SUCCESS"})
			var ae *APIError
			if closed != tc.wantClosed || (err != nil) != tc.wantAPIError || (tc.wantAPIError && !errors.As(err, &ae)) {
				t.Fatalf("CloseRun = %v, %v", closed, err)
			}
			want := fmt.Sprintf("auth:200 run_logs:%d run_get:200", tc.code)
			if got := strings.Join(obs.get(), " "); got != want {
				t.Fatalf("observed %q, want %q", got, want)
			}
		})
	}
}

func TestGetRun(t *testing.T) {
	f := newFakePort(t)
	f.api = func(w http.ResponseWriter, r *http.Request, _ []byte) {
		switch r.URL.Path {
		case "/v1/actions/runs/r_new":
			fmt.Fprint(w, `{"ok":true,"run":{"id":"r_new","status":"IN_PROGRESS","action":{"identifier":"create_microservice","title":"x"},"endedAt":null,"extra":{"a":1}}}`)
		case "/v1/actions/runs/r_old":
			fmt.Fprint(w, `{"ok":true,"run":{"id":"r_old","status":"FAILURE","statusLabel":"exit code 3","action":"deploy_microservice","endedAt":"2022-12-07T12:53:52.916Z"}}`)
		default:
			w.WriteHeader(404)
			fmt.Fprint(w, `{"ok":false,"error":"not_found"}`)
		}
	}
	c, _ := newTestClient(t, f, nil)
	ctx := context.Background()
	r, err := c.GetRun(ctx, "r_new")
	if err != nil || r.ID != "r_new" || r.Status != StatusInProgress || r.Action != "create_microservice" || r.EndedAt != nil || r.Terminated() {
		t.Fatalf("GetRun = %+v, %v", r, err)
	}
	r, err = c.GetRun(ctx, "r_old")
	if err != nil || !r.Terminated() || r.StatusLabel != "exit code 3" || r.Action != "deploy_microservice" || r.EndedAt == nil ||
		!r.EndedAt.Equal(time.Date(2022, 12, 7, 12, 53, 52, 916e6, time.UTC)) {
		t.Fatalf("GetRun = %+v, %v", r, err)
	}
	_, err = c.GetRun(ctx, "r_missing")
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != 404 || !strings.Contains(err.Error(), "get run r_missing") {
		t.Fatalf("err = %v", err)
	}
}

func TestPatchRun(t *testing.T) {
	f := newFakePort(t)
	c, obs := newTestClient(t, f, nil)
	ctx := context.Background()
	if err := c.PatchRun(ctx, "r_1", RunPatch{}); err != nil || len(obs.get()) != 0 {
		t.Fatalf("empty patch: %v, observed %v", err, obs.get())
	}
	label, ext := "deploying <prod>", "gh-42"
	if err := c.PatchRun(ctx, "r_1", RunPatch{StatusLabel: &label, Link: []string{"https://x/y?a=1&b=2"}, ExternalRunID: &ext}); err != nil {
		t.Fatal(err)
	}
	r := f.recorded()[0]
	want := `{"statusLabel":"deploying <prod>","link":["https://x/y?a=1&b=2"],"externalRunId":"gh-42"}`
	if r.method != http.MethodPatch || r.path != "/v1/actions/runs/r_1" || string(r.body) != want {
		t.Fatalf("request %s %s %s", r.method, r.path, r.body)
	}
}

func TestLogBodyNotEscaped(t *testing.T) {
	f := newFakePort(t)
	c, _ := newTestClient(t, f, nil)
	msg := "<b>& done</b> — ünïcødé 日本語 🚀\n\ttab \"quoted\""
	if err := c.AppendLog(context.Background(), "r_1", msg); err != nil {
		t.Fatal(err)
	}
	raw := f.recorded()[0].body
	if !strings.Contains(string(raw), `<b>& done</b> — ünïcødé 日本語 🚀`) {
		t.Fatalf("body escaped: %s", raw)
	}
	var got struct{ Message string }
	if err := json.Unmarshal(raw, &got); err != nil || got.Message != msg {
		t.Fatalf("decoded %q, %v", got.Message, err)
	}
}

// A run id that is not [A-Za-z0-9_-]+ never becomes part of a URL, whatever call
// carries it: "..", "." or "r/../x" would name another route.
func TestRunIDValidatedBeforeAnyURL(t *testing.T) {
	f := newFakePort(t)
	c, _ := newTestClient(t, f, nil)
	ctx := context.Background()
	label := "l"
	for _, id := range []string{"..", ".", "", "r/../x", "r%2F..", "r?x=1"} {
		calls := map[string]error{
			"AppendLog": c.AppendLog(ctx, id, "m"),
			"PatchRun":  c.PatchRun(ctx, id, RunPatch{StatusLabel: &label}),
		}
		_, calls["CloseRun"] = c.CloseRun(ctx, id, Closing{TerminationStatus: StatusSuccess})
		_, calls["GetRun"] = c.GetRun(ctx, id)
		calls["SendResponse"] = c.SendResponse(ctx, id, "r")
		nodes := NodeRuns{C: c}
		calls["NodeRuns.AppendLog"] = nodes.AppendLog(ctx, id, "m")
		_, calls["NodeRuns.CloseRun"] = nodes.CloseRun(ctx, id, Closing{TerminationStatus: StatusSuccess})
		_, calls["NodeRuns.GetRun"] = nodes.GetRun(ctx, id)
		for name, err := range calls {
			if err == nil || !strings.Contains(err.Error(), "run id") {
				t.Errorf("%s(%q) = %v, want a run id error", name, id, err)
			}
			if !Permanent(err) {
				t.Errorf("%s(%q): %v is not permanent: retrying cannot make the id valid", name, id, err)
			}
		}
	}
	if r := f.recorded(); len(r) != 0 {
		t.Fatalf("requests reached Port: %+v", r)
	}
	if err := c.AppendLog(ctx, "r_Ok-1", "m"); err != nil {
		t.Fatal(err)
	}
}

// The client never follows a redirect, so neither the agent's token nor its client
// secret is sent anywhere Port's first answer points to, same host or not.
func TestNoRedirectCarriesCredentials(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
	}))
	defer other.Close()
	f := newFakePort(t)
	f.api = func(w http.ResponseWriter, r *http.Request, _ []byte) {
		switch r.URL.Path {
		case "/v1/actions/runs/r_1/logs":
			http.Redirect(w, r, "/v1/elsewhere", http.StatusTemporaryRedirect)
		case "/v1/actions/runs/r_2/logs":
			http.Redirect(w, r, other.URL+"/v1/x", http.StatusPermanentRedirect)
		default:
			w.WriteHeader(http.StatusOK)
		}
	}
	for _, hc := range []*http.Client{nil, {Timeout: 5 * time.Second}} {
		c, _ := newTestClient(t, f, func(o *Options) { o.HTTPClient = hc })
		for _, id := range []string{"r_1", "r_2"} {
			if err := c.AppendLog(context.Background(), id, "m"); err == nil {
				t.Errorf("AppendLog(%s) through a redirect = nil, want the 3xx as an error", id)
			}
		}
	}
	for _, r := range f.recorded() {
		if r.path == "/v1/elsewhere" {
			t.Errorf("followed a same-host redirect with %q", r.auth)
		}
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("followed %d redirects to another host", n)
	}
}

// Closing requests waiting for the limiter are served before waiting log
// batches, even when the logs queued first.
func TestClosingRequestsGoFirst(t *testing.T) {
	f := newFakePort(t)
	var mu sync.Mutex
	var order []string
	f.api = func(w http.ResponseWriter, r *http.Request, body []byte) {
		var m struct{ Message string }
		json.Unmarshal(body, &m)
		mu.Lock()
		order = append(order, m.Message)
		mu.Unlock()
		fmt.Fprint(w, `{"ok":true}`)
	}
	c, _ := newTestClient(t, f, nil)
	ctx := context.Background()
	if _, err := c.Token(ctx); err != nil {
		t.Fatal(err)
	}
	// A token every 500ms, burst 1, bucket empty: the logs wait long enough for
	// CloseRun to queue behind them.
	c.sched.ceiling = rate.NewLimiter(2, 1)
	c.sched.ceiling.Allow()
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.AppendLog(ctx, "r_1", fmt.Sprintf("log%d", i)); err != nil {
				t.Error(err)
			}
		}()
	}
	eventually(t, "log requests queued", func() bool { return c.sched.queued()[PriorityLog] == 5 })
	closed, err := c.CloseRun(ctx, "r_1", Closing{Message: "close", TerminationStatus: "SUCCESS"})
	if err != nil || closed {
		t.Fatalf("CloseRun = %v, %v", closed, err)
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(order) != 6 || order[0] != "close" {
		t.Fatalf("arrival order %v, want close first", order)
	}
}

// TestRetryLogsCarryCallersFields: the caller's fields (a run's action) reach the retry lines.
func TestRetryLogsCarryCallersFields(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/auth/access_token" {
			_, _ = io.WriteString(w, `{"accessToken":"t","expiresIn":3600}`)
			return
		}
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	defer srv.Close()
	core, logs := observer.New(zapcore.InfoLevel)
	c, err := New(Options{BaseURL: srv.URL, ClientID: "id", ClientSecret: "s", RequestsPerSecond: 1000,
		BaseBackoff: time.Millisecond, MaxBackoff: time.Millisecond, Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := WithLogFields(context.Background(), zap.String("action", "deploy"))
	if err := c.AppendLog(ctx, "r_1", "hi"); err != nil {
		t.Fatal(err)
	}
	retries := logs.FilterMessage("port request failed, retrying").All()
	if len(retries) != 1 {
		t.Fatalf("%d retry lines, want 1", len(retries))
	}
	if got := retries[0].ContextMap(); got["action"] != "deploy" || got["run_id"] != "r_1" {
		t.Fatalf("retry line fields %v, want action and run_id", got)
	}
}

func TestPermanent(t *testing.T) {
	api := func(code int) error {
		return fmt.Errorf("close run r: %w", &APIError{Endpoint: EndpointRunLogs, StatusCode: code})
	}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("dial tcp: refused"), false},
		{api(404), true}, {api(409), true}, {api(413), true}, {api(422), true},
		{api(401), false}, {api(403), false}, {api(408), false}, {api(429), false}, {api(503), false},
		{fmt.Errorf("%w (last: %w)", context.Canceled, &APIError{StatusCode: 404}), false},
		{fmt.Errorf("%w (last: %w)", context.DeadlineExceeded, &APIError{StatusCode: 422}), false},
	} {
		if got := Permanent(tc.err); got != tc.want {
			t.Errorf("Permanent(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// Runs end in bursts (up to executor.maxConcurrent at once): their closing requests must
// reuse connections rather than dial Port (TCP, and TLS in production) for most of them,
// which the default transport's 2 idle connections per host made them do.
func TestConcurrentRequestsReuseConnections(t *testing.T) {
	const conc, rounds = 16, 20
	var dials atomic.Int32
	f := &fakePort{t: t, tokens: []string{"tok1"}, expiresIn: 10800}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dials.Add(1)
		}
	}
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	c, _ := newTestClient(t, f, nil)
	ctx := context.Background()
	if _, err := c.Token(ctx); err != nil {
		t.Fatal(err)
	}
	for r := range rounds {
		var wg sync.WaitGroup
		for i := range conc {
			wg.Go(func() {
				if _, err := c.CloseRun(ctx, fmt.Sprintf("r_%d_%d", r, i), Closing{Message: "x", TerminationStatus: "SUCCESS"}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	t.Logf("%d connections for %d requests, %d at once", dials.Load(), conc*rounds+1, conc)
	if n := dials.Load(); n > conc+1 {
		t.Errorf("%d connections opened for %d rounds of %d concurrent requests; want at most %d (one per concurrent request, plus auth)", n, rounds, conc, conc+1)
	}
}

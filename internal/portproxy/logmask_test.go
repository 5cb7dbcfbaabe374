package portproxy_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/portproxy"
)

// maskedRun serves a proxy forwarding through fwd with run r_1 registered under allow, its
// masking replacing "s3cr3t" in every string as the run's log would, and returns a call
// that sends a request as the run's command and answers its status.
func maskedRun(t *testing.T, fwd portproxy.Forwarder, opts portproxy.Options, allow ...string) (call func(method, path string, body io.Reader) int) {
	t.Helper()
	p := portproxy.New(fwd, opts)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	url, _, err := p.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := config.ParseAllowRules(allow)
	if err != nil {
		t.Fatal(err)
	}
	token, revoke := p.Register("r_1", "act", "microservice", rules)
	t.Cleanup(revoke)
	var mask func(any) any
	mask = func(v any) any {
		switch t := v.(type) {
		case string:
			return strings.ReplaceAll(t, "s3cr3t", "***")
		case map[string]any:
			out := map[string]any{}
			for k, x := range t {
				out[k] = mask(x)
			}
			return out
		}
		return v
	}
	p.SetMask(token, maskFunc(mask))
	return func(method, path string, body io.Reader) int {
		req, err := http.NewRequest(method, url+path, body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
}

// What the agent logs of a command's request, its path and an error that quotes its URL,
// is masked as the run's log is: a command may put a secret in either.
func TestLoggedRequestsAreMasked(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	fail := func(_ context.Context, rq portproxy.Request) (portproxy.Response, error) {
		return portproxy.Response{}, errors.New(`Get "https://api.getport.io` + rq.Path + "?" + rq.Query.Encode() + `": connection refused`)
	}
	call := maskedRun(t, fail, portproxy.Options{Logger: zap.New(core)}, "GET /v1/blueprints/*")
	if code := call("GET", "/blueprints/s3cr3t?q=s3cr3t", nil); code != http.StatusBadGateway {
		t.Fatalf("HTTP %d, want 502 from the failed forward", code)
	}
	entries := logs.FilterMessage("proxied request failed").All()
	if len(entries) != 1 {
		t.Fatalf("%d lines about the failed request, want 1", len(entries))
	}
	for k, v := range entries[0].ContextMap() {
		if s, _ := v.(string); strings.Contains(s, "s3cr3t") {
			t.Errorf("logged %s=%s: the secret unmasked", k, s)
		}
	}
}

// recorder forwards nothing: it keeps what would reach Port and answers 200.
func recorder() (portproxy.Forwarder, func() []string) {
	var mu sync.Mutex
	var sent []string
	return func(_ context.Context, rq portproxy.Request) (portproxy.Response, error) {
			mu.Lock()
			sent = append(sent, rq.Method+" "+rq.Path+" "+string(rq.Body))
			mu.Unlock()
			return portproxy.Response{StatusCode: http.StatusOK, Body: []byte(`{"ok":true}`)}, nil
		}, func() []string {
			mu.Lock()
			defer mu.Unlock()
			return append([]string(nil), sent...)
		}
}

// Whatever a command writes under its run's routes reaches Port masked, a route the
// portAPI.allow list opened (its response) as well as its log and the run itself.
func TestWritesUnderTheRunAreMasked(t *testing.T) {
	fwd, sent := recorder()
	call := maskedRun(t, fwd, portproxy.Options{}, "PATCH /v1/actions/runs/*/response")
	for _, path := range []string{"/actions/runs/r_1/response", "/actions/runs/r_1"} {
		if code := call("PATCH", path, strings.NewReader(`{"note":"s3cr3t"}`)); code != http.StatusOK {
			t.Fatalf("PATCH %s: HTTP %d", path, code)
		}
	}
	got := sent()
	if len(got) != 2 {
		t.Fatalf("sent %q, want the two PATCHes", got)
	}
	for _, s := range got {
		if strings.Contains(s, "s3cr3t") {
			t.Errorf("reached Port unmasked: %s", s)
		}
	}
}

// A body that is not JSON, on a route of the run that takes one (its response), is masked
// as text.
func TestTextWritesUnderTheRunAreMasked(t *testing.T) {
	fwd, sent := recorder()
	call := maskedRun(t, fwd, portproxy.Options{}, "PATCH /v1/actions/runs/*/response")
	if code := call("PATCH", "/actions/runs/r_1/response", strings.NewReader("note s3cr3t")); code != http.StatusOK {
		t.Fatalf("HTTP %d", code)
	}
	if got := sent(); len(got) != 1 || strings.Contains(got[0], "s3cr3t") || !strings.Contains(got[0], "note ***") {
		t.Errorf("sent %q, want the note with the secret masked", got)
	}
}

// maskFunc is a func as a Masker.
type maskFunc func(any) any

func (f maskFunc) Mask(v any) any { return f(v) }

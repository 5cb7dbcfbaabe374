package portproxy_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/portproxy"
)

// What the agent logs of a command's request, its path and an error that quotes its URL,
// is masked as the run's log is: a command may put a secret in either.
func TestLoggedRequestsAreMasked(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	fail := func(_ context.Context, rq portproxy.Request) (portproxy.Response, error) {
		return portproxy.Response{}, errors.New(`Get "https://api.getport.io` + rq.Path + "?" + rq.Query.Encode() + `": connection refused`)
	}
	p := portproxy.New(fail, portproxy.Options{Logger: zap.New(core)})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url, _, err := p.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := config.ParseAllowRules([]string{"GET /v1/blueprints/*"})
	if err != nil {
		t.Fatal(err)
	}
	token, revoke := p.Register("r_1", "act", "microservice", rules)
	defer revoke()
	p.SetMask(token, func(v any) any {
		if s, ok := v.(string); ok {
			return strings.ReplaceAll(s, "s3cr3t", "***")
		}
		return v
	})
	req, _ := http.NewRequest("GET", url+"/blueprints/s3cr3t?q=s3cr3t", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("HTTP %d, want 502 from the failed forward", resp.StatusCode)
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

// Whatever a command writes under its run's routes reaches Port masked, a route the
// portAPI.allow list opened (its response) as well as its log and the run itself.
func TestWritesUnderTheRunAreMasked(t *testing.T) {
	var mu sync.Mutex
	var sent []string
	record := func(_ context.Context, rq portproxy.Request) (portproxy.Response, error) {
		mu.Lock()
		sent = append(sent, rq.Method+" "+rq.Path+" "+string(rq.Body))
		mu.Unlock()
		return portproxy.Response{StatusCode: http.StatusOK, Body: []byte(`{"ok":true}`)}, nil
	}
	p := portproxy.New(record, portproxy.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url, _, err := p.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := config.ParseAllowRules([]string{"PATCH /v1/actions/runs/*/response"})
	if err != nil {
		t.Fatal(err)
	}
	token, revoke := p.Register("r_1", "act", "microservice", rules)
	defer revoke()
	p.SetMask(token, func(v any) any {
		if m, ok := v.(map[string]any); ok {
			out := map[string]any{}
			for k, x := range m {
				if s, ok := x.(string); ok {
					x = strings.ReplaceAll(s, "s3cr3t", "***")
				}
				out[k] = x
			}
			return out
		}
		return v
	})
	for _, path := range []string{"/actions/runs/r_1/response", "/actions/runs/r_1"} {
		req, _ := http.NewRequest("PATCH", url+path, strings.NewReader(`{"note":"s3cr3t"}`))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("PATCH %s: HTTP %d", path, resp.StatusCode)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sent) != 2 {
		t.Fatalf("sent %q, want the two PATCHes", sent)
	}
	for _, s := range sent {
		if strings.Contains(s, "s3cr3t") {
			t.Errorf("reached Port unmasked: %s", s)
		}
	}
}

package portapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestForwardRetriesAndPassesAnswers(t *testing.T) {
	f := newFakePort(t)
	var gotQuery string
	f.api = func(w http.ResponseWriter, r *http.Request, body []byte) {
		f.mu.Lock()
		n := len(f.requests)
		gotQuery = r.URL.RawQuery
		f.mu.Unlock()
		switch n {
		case 1:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
		case 2:
			w.WriteHeader(http.StatusBadGateway)
		default:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, `{"ok":true,"echo":%s}`, body)
		}
	}
	c, obs := newTestClient(t, f, nil)
	resp, err := c.Forward(context.Background(), ProxyRequest{
		Method: "POST", Path: "/v1/blueprints/microservice/entities",
		Query: url.Values{"upsert": {"true"}, "run_id": {"r_1"}},
		Body:  []byte(`{"identifier":"a"}`), RunID: "r_1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusCreated || string(resp.Body) != `{"ok":true,"echo":{"identifier":"a"}}` || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("answer %d %s %v", resp.StatusCode, resp.Body, resp.Header)
	}
	if want := "auth:200 proxy:429 proxy:502 proxy:201"; strings.Join(obs.get(), " ") != want {
		t.Fatalf("observed %q, want %q", obs.get(), want)
	}
	if gotQuery != "run_id=r_1&upsert=true" {
		t.Errorf("query %q", gotQuery)
	}
	for _, r := range f.recorded() {
		if r.auth != "Bearer tok1" || r.ctype != "application/json" || r.path != "/v1/blueprints/microservice/entities" {
			t.Errorf("request %+v: want the agent's token, JSON, the path as given", r)
		}
	}
}

func TestForwardReturnsPermanentAnswers(t *testing.T) {
	f := newFakePort(t)
	f.api = statusSequence(status(http.StatusNotFound), status(http.StatusUnprocessableEntity))
	c, _ := newTestClient(t, f, nil)
	for _, want := range []int{404, 422} {
		resp, err := c.Forward(context.Background(), ProxyRequest{Method: "GET", Path: "/v1/blueprints/x", ContentType: "text/plain", Body: []byte("b")})
		if err != nil || resp.StatusCode != want || string(resp.Body) != `{"ok":false}` {
			t.Fatalf("Forward = %d %s, %v; want %d passed on", resp.StatusCode, resp.Body, err, want)
		}
	}
	if r := f.recorded(); r[0].ctype != "text/plain" {
		t.Errorf("content type %q, want the caller's", r[0].ctype)
	}
	if _, err := c.Forward(context.Background(), ProxyRequest{Method: "GET", Path: "/v2/x"}); err == nil {
		t.Error("a path outside /v1/ was forwarded")
	}
	if _, err := c.Forward(context.Background(), ProxyRequest{Method: "GET", Path: "/v1/x?y=1"}); err == nil {
		t.Error("a path with a query was forwarded")
	}
}

func TestForwardGivesUpWithContext(t *testing.T) {
	f := newFakePort(t)
	f.api = func(w http.ResponseWriter, _ *http.Request, _ []byte) { w.WriteHeader(http.StatusServiceUnavailable) }
	c, _ := newTestClient(t, f, nil)
	ctx, cancel := context.WithCancel(context.Background())
	sleeps := 0
	c.sleep = func(ctx context.Context, _ time.Duration) error {
		if sleeps++; sleeps == 3 {
			cancel()
		}
		return ctx.Err()
	}
	_, err := c.Forward(ctx, ProxyRequest{Method: "GET", Path: "/v1/blueprints/x"})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "503") {
		t.Fatalf("Forward = %v, want context.Canceled carrying the last 503", err)
	}
}

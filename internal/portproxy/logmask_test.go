package portproxy_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
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

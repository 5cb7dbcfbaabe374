package config

import (
	"strings"
	"testing"
)

func TestRuleMatch(t *testing.T) {
	for _, tc := range []struct {
		rule, method, path string
		want               bool
	}{
		{"GET /v1/blueprints/*", "GET", "blueprints/service", true},
		{"GET /v1/blueprints/*", "POST", "blueprints/service", false},
		{"GET /v1/blueprints/*", "GET", "blueprints", false},
		{"GET /v1/blueprints/*", "GET", "blueprints/service/entities", false},
		{"get /v1/blueprints/*", "GET", "blueprints/service", true},
		{"POST /v1/blueprints/service/entities", "POST", "blueprints/service/entities", true},
		{"POST /v1/blueprints/service/entities", "POST", "blueprints/other/entities", false},
		{"/v1/blueprints/service/entities/*", "DELETE", "blueprints/service/entities/x", true},
		{"/v1/blueprints/service/entities/*", "PATCH", "blueprints/service/entities/x", true},
		{"/v1/entities/**", "POST", "entities/search", true},
		{"/v1/entities/**", "GET", "entities", true},
		{"/v1/entities/**", "GET", "entity", false},
		{"GET /v1/blueprints/*/entities/*", "GET", "blueprints/a/entities/b", true},
	} {
		r, err := ParseAllowRule(tc.rule)
		if err != nil {
			t.Fatalf("ParseAllowRule(%q): %v", tc.rule, err)
		}
		if got := r.Match(tc.method, strings.Split(tc.path, "/")); got != tc.want {
			t.Errorf("%q matches %s /v1/%s = %v, want %v", tc.rule, tc.method, tc.path, got, tc.want)
		}
	}
}

func TestParseRuleErrors(t *testing.T) {
	for _, bad := range []string{
		"", "GET", "FETCH /v1/x", "/blueprints/x", "GET /v1/", "/v1/a//b", "/v1/a/",
		"/v1/**/x", "/v1/svc-*", "/v1/a?x=1", "/v1/../auth", "GET  /v1/a b",
	} {
		if r, err := ParseAllowRule(bad); err == nil {
			t.Errorf("ParseAllowRule(%q) = %+v, want an error", bad, r)
		}
	}
	if _, err := ParseAllowRules([]string{"/v1/ok", "nope"}); err == nil || !strings.HasPrefix(err.Error(), "allow[1]: ") {
		t.Errorf("Parse error %v does not name allow[1]", err)
	}
}

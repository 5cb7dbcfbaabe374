// The routes an action's portAPI.allow lists for its commands' Port API calls, parsed and
// matched here with no HTTP imports: config validates the rules, the agent compiles them and
// the proxy matches them, without config depending on the proxy.

package config

import (
	"fmt"
	"strings"
)

// AllowRule is one entry of an action's portAPI.allow: "[METHOD ]PATH", e.g.
// "GET /v1/blueprints/*" or "POST /v1/blueprints/service/entities".
//
// METHOD is GET, POST, PUT, PATCH or DELETE (any case); without it the rule
// matches every method. PATH starts with /v1/ and is matched segment by
// segment against the request's decoded path: "*" matches exactly one
// segment, "**" (last segment only) matches the rest of the path, zero or more
// segments; anything else matches literally. There is no partial globbing
// ("svc-*" is an error), no query and no trailing slash.
type AllowRule struct {
	method string   // "" means any
	segs   []string // after "/v1"
	text   string
}

func (r AllowRule) String() string { return r.text }

// ParseAllowRule parses one allow pattern.
func ParseAllowRule(s string) (AllowRule, error) {
	text := strings.TrimSpace(s)
	r := AllowRule{text: text}
	path := text
	if i := strings.IndexAny(text, " \t"); i >= 0 {
		r.method = strings.ToUpper(text[:i])
		path = strings.TrimSpace(text[i+1:])
		if !AllowMethod(r.method) {
			return AllowRule{}, fmt.Errorf("method %q: want GET, POST, PUT, PATCH or DELETE", text[:i])
		}
	}
	if !strings.HasPrefix(path, "/v1/") {
		return AllowRule{}, fmt.Errorf("path %q must start with /v1/ (the route as Port's API reference writes it)", path)
	}
	if strings.ContainsAny(path, "?# \t") {
		return AllowRule{}, fmt.Errorf("path %q: no query, fragment or spaces allowed", path)
	}
	r.segs = strings.Split(path[len("/v1/"):], "/")
	for i, seg := range r.segs {
		switch {
		case seg == "":
			return AllowRule{}, fmt.Errorf("path %q has an empty segment", path)
		case seg == "." || seg == "..":
			return AllowRule{}, fmt.Errorf("path %q: %q segments are not allowed", path, seg)
		case seg == "**" && i != len(r.segs)-1:
			return AllowRule{}, fmt.Errorf("path %q: ** is only allowed as the last segment", path)
		case seg != "*" && seg != "**" && strings.Contains(seg, "*"):
			return AllowRule{}, fmt.Errorf("path %q: * must be a whole segment", path)
		}
	}
	return r, nil
}

// ParseAllowRules parses every pattern; the error names the index of the first bad one.
func ParseAllowRules(patterns []string) ([]AllowRule, error) {
	rules := make([]AllowRule, 0, len(patterns))
	for i, p := range patterns {
		r, err := ParseAllowRule(p)
		if err != nil {
			return nil, fmt.Errorf("allow[%d]: %w", i, err)
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// Match reports whether the rule covers method on the decoded path segments
// after "/v1".
func (r AllowRule) Match(method string, segs []string) bool {
	if r.method != "" && r.method != method {
		return false
	}
	for i, p := range r.segs {
		if p == "**" {
			return true
		}
		if i >= len(segs) || (p != "*" && p != segs[i]) {
			return false
		}
	}
	return len(segs) == len(r.segs)
}

// AllowMethod reports the HTTP methods the proxy forwards (and rules may name). A switch,
// not a package-level map, so nothing can change the set at run time.
func AllowMethod(m string) bool {
	switch m {
	case "GET", "POST", "PUT", "PATCH", "DELETE":
		return true
	}
	return false
}

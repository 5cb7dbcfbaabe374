package config

import (
	"strings"
	"testing"
)

// port.baseURL over plain http:// carries the client secret (the token request) in clear
// text: refused unless the host is this machine, or insecureHTTP says it is meant.
func TestBaseURLPlainHTTPOnlyToLoopback(t *testing.T) {
	for _, tc := range []struct {
		url      string
		insecure bool
		ok       bool
	}{
		{"https://api.getport.io", false, true},
		{"https://10.0.0.5:8443", false, true},
		{"http://127.0.0.1:8080", false, true},
		{"http://127.1.2.3", false, true},
		{"http://localhost:8080", false, true},
		{"http://LocalHost", false, true},
		{"http://[::1]:8080", false, true},
		{"http://api.getport.io", false, false},
		{"http://emulator:8080", false, false},
		{"http://10.0.0.5", false, false},
		{"http://localhost.evil.example", false, false},
		{"http://127.0.0.1.evil.example", false, false},
		{"http://[::ffff:10.0.0.5]", false, false},
		{"http://user@", false, false},
		{"http://emulator:8080", true, true},
	} {
		c, _ := validConfig(t)
		c.Port.BaseURL, c.Port.InsecureHTTP = tc.url, tc.insecure
		err := validate(c)
		refused := err != nil && strings.Contains(err.Error(), "port.baseURL: ")
		if refused == tc.ok {
			t.Errorf("baseURL %s (insecureHTTP %v): Validate = %v, want ok=%v", tc.url, tc.insecure, err, tc.ok)
		}
	}
}

// A password in port.baseURL (a gateway in front of Port's API) is not quoted by the
// problem that refuses the URL: problems go to the logs.
func TestBaseURLProblemHidesThePassword(t *testing.T) {
	for _, u := range []string{"http://gw:gw-pass-77@gateway.example", "ftp://gw:gw-pass-77@gateway.example",
		"http://gw:gw/pass-77@gateway.example"} { // this one does not parse
		c, _ := validConfig(t)
		c.Port.BaseURL = u
		err := validate(c)
		if err == nil || !strings.Contains(err.Error(), "gateway.example") || strings.Contains(err.Error(), "pass-77") {
			t.Errorf("baseURL %s: Validate = %v, want the URL refused without its password", u, err)
		}
	}
}

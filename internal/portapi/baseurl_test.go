package portapi

import (
	"strings"
	"testing"
)

// A base URL New refuses is not quoted with its password (a gateway in front of Port's
// API): the error reaches validate --connect's output and the agent's start-up log.
func TestNewHidesTheBaseURLPassword(t *testing.T) {
	for _, u := range []string{"https://gw:gw-pass-77@gateway.example/?x=1", "https://gw:gw-pass-77@/",
		"https://gw:gw/pass-77@gateway.example"} { // the last does not parse
		_, err := New(Options{BaseURL: u, ClientID: "id", ClientSecret: "secret"})
		if err == nil || strings.Contains(err.Error(), "pass-77") {
			t.Errorf("base URL %s: New = %v, want it refused without its password", u, err)
		}
	}
}

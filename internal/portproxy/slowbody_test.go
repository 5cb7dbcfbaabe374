package portproxy_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/portproxy"
)

// answerAtOnce is Port answering every request at once: what is under test is the proxy's
// hold on its slots while it reads a body.
func answerAtOnce(context.Context, portproxy.Request) (portproxy.Response, error) {
	return portproxy.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"ok":true}`)}, nil
}

// stallBody sends a request whose body never arrives (10 of the 100 bytes announced) and
// keeps its connection open: the request gets its slot, then waits on the body.
func stallBody(t *testing.T, f *fixture, token, run string) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(strings.TrimSuffix(f.url, "/v1"), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST /v1/actions/runs/%s/logs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"message\"", run, token)
}

// A body that trickles, or never comes, holds its request's slot only for BodyTimeout, or
// until its run ends: else one run's stalled requests would hold all runs' slots, and every
// other run's requests would wait for their timeout (README "Scripts calling Port").
func TestAStalledBodyGivesItsSlotBack(t *testing.T) {
	for _, c := range []struct {
		name   string
		limits portproxy.Limits
		end    bool // the stalling run ends
	}{
		{"timeout", portproxy.Limits{MaxConcurrent: 1, BodyTimeout: 300 * time.Millisecond}, false},
		{"run ended", portproxy.Limits{MaxConcurrent: 1, BodyTimeout: time.Hour}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, f := serveProxy(t, answerAtOnce, portproxy.Options{RequestTimeout: 5 * time.Second, Limits: c.limits})
			tokA, revokeA := p.Register("r_a", "act", "", nil)
			defer revokeA()
			tokB, revokeB := p.Register("r_b", "act", "", nil)
			defer revokeB()
			stallBody(t, f, tokA, "r_a")
			// r_a's request has the one slot once r_b's, sent next, waits for it.
			waitUntil(t, "r_a's request in its slot", func() bool { return p.InFlight() == 1 })
			if c.end {
				revokeA()
			}
			start := time.Now()
			if got := f.callStatus(tokB, http.MethodGet, "/actions/runs/r_b"); got != http.StatusOK {
				t.Fatalf("r_b's request: %d after %s, want 200: r_a's stalled body held the slot", got, time.Since(start).Round(time.Millisecond))
			}
		})
	}
}

package portproxy_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/port-runner/port-runner/internal/portproxy"
	"github.com/port-runner/port-runner/internal/waitcond"
)

// gate is a Forwarder that holds every request until released, counting them per run: the
// proxy's own limits are what is under test, so Port's side is a stand-in here.
type gate struct {
	mu      sync.Mutex
	inside  map[string]int
	maxSeen map[string]int
	release chan struct{}
}

func newGate() *gate {
	return &gate{inside: map[string]int{}, maxSeen: map[string]int{}, release: make(chan struct{})}
}

func (g *gate) forward(ctx context.Context, rq portproxy.Request) (portproxy.Response, error) {
	g.mu.Lock()
	g.inside[rq.RunID]++
	g.maxSeen[rq.RunID] = max(g.maxSeen[rq.RunID], g.inside[rq.RunID])
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.inside[rq.RunID]--
		g.mu.Unlock()
	}()
	select {
	case <-g.release:
	case <-ctx.Done():
		return portproxy.Response{}, ctx.Err()
	}
	return portproxy.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"ok":true}`)}, nil
}

func (g *gate) in(run string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.inside[run]
}

func serveProxy(t *testing.T, fwd portproxy.Forwarder, opts portproxy.Options) (*portproxy.Proxy, *fixture) {
	t.Helper()
	opts.Logger = zaptest.NewLogger(t)
	p := portproxy.New(fwd, opts)
	ctx, cancel := context.WithCancel(context.Background())
	url, wait, err := p.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = wait() })
	return p, &fixture{proxy: p, url: url}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitcond.For(t, what, 20*time.Second, cond)
}

// One run's requests are bounded in flight and in the queue, and another
// run's requests are not held up by them.
func TestPerRunConcurrencyAndQueue(t *testing.T) {
	g := newGate()
	p, f := serveProxy(t, g.forward, portproxy.Options{Limits: portproxy.Limits{MaxConcurrentPerRun: 2, MaxQueuedPerRun: 3}})
	tokA, revokeA := p.Register("r_a", "act", "", nil)
	defer revokeA()
	tokB, revokeB := p.Register("r_b", "act", "", nil)
	defer revokeB()

	var wg sync.WaitGroup
	answers := make(chan int, 5)
	for range 5 {
		wg.Go(func() {
			answers <- f.callStatus(tokA, "GET", "/actions/runs/r_a")
		})
	}
	waitUntil(t, "2 of run A's requests at Port and 3 queued", func() bool { return g.in("r_a") == 2 && p.Waiting() == 3 })
	// The queue is full: the next one is refused at once, not queued.
	if code := f.callStatus(tokA, "GET", "/actions/runs/r_a"); code != http.StatusTooManyRequests {
		t.Fatalf("request past the queue: %d, want 429", code)
	}
	// Run B is not held up by run A's flood.
	bDone := make(chan int, 1)
	go func() { bDone <- f.callStatus(tokB, "GET", "/actions/runs/r_b") }()
	waitUntil(t, "run B's request at Port", func() bool { return g.in("r_b") == 1 })
	close(g.release)
	wg.Wait()
	close(answers)
	for code := range answers {
		if code != 200 {
			t.Errorf("queued request answered %d, want 200 once released", code)
		}
	}
	if code := <-bDone; code != 200 {
		t.Errorf("run B: %d", code)
	}
	if g.maxSeen["r_a"] != 2 {
		t.Errorf("run A had %d requests at Port at once, want at most 2", g.maxSeen["r_a"])
	}
}

// A run's share of the budget: past its burst, a request that would wait beyond its deadline
// is answered 504 at once, without reaching Port.
func TestPerRunBudgetShare(t *testing.T) {
	var mu sync.Mutex
	reached := map[string]int{}
	fwd := func(_ context.Context, rq portproxy.Request) (portproxy.Response, error) {
		mu.Lock()
		reached[rq.RunID]++
		mu.Unlock()
		return portproxy.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{}`)}, nil
	}
	p, f := serveProxy(t, fwd, portproxy.Options{RequestTimeout: time.Minute, Limits: portproxy.Limits{RunRequestsPerSecond: 0.001}})
	tokA, revokeA := p.Register("r_a", "act", "", nil)
	defer revokeA()
	tokB, revokeB := p.Register("r_b", "act", "", nil)
	defer revokeB()
	if code := f.callStatus(tokA, "GET", "/actions/runs/r_a"); code != 200 {
		t.Fatalf("first request: %d", code)
	}
	if code := f.callStatus(tokA, "GET", "/actions/runs/r_a"); code != http.StatusGatewayTimeout {
		t.Fatalf("past the run's share: %d, want 504", code)
	}
	if code := f.callStatus(tokB, "GET", "/actions/runs/r_b"); code != 200 {
		t.Fatalf("another run has its own share: %d", code)
	}
	mu.Lock()
	defer mu.Unlock()
	if reached["r_a"] != 1 || reached["r_b"] != 1 {
		t.Fatalf("reached Port: %v", reached)
	}
}

func (f *fixture) callStatus(token, method, path string) int {
	return f.callStatusBody(token, method, path, "")
}

// callStatusBody sends a JSON body (none if "") and returns the answer's status, -1 if none.
func (f *fixture) callStatusBody(token, method, path, body string) int {
	req, err := http.NewRequest(method, f.url+path, strings.NewReader(body))
	if err != nil {
		return -1
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	resp.Body.Close()
	return resp.StatusCode
}

package portproxy_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/portproxy"
)

// Once a run's revoke has returned, nothing of the run is being sent to Port nor will be:
// a request stuck at Port is cancelled and waited for (revoke does not hang on it), and a
// queued one that gets the slot it frees is not sent.
func TestRevokeWaitsForTheRunsForwards(t *testing.T) {
	g := newGate()
	var forwards atomic.Int32
	fwd := func(ctx context.Context, rq portproxy.Request) (portproxy.Response, error) {
		forwards.Add(1)
		return g.forward(ctx, rq)
	}
	p, f := serveProxy(t, fwd, portproxy.Options{Limits: portproxy.Limits{MaxConcurrentPerRun: 1}})
	token, revoke := p.Register("r_1", "act", "", nil)
	answers := make(chan int, 2)
	go func() { answers <- f.callStatus(token, "GET", "/actions/runs/r_1") }()
	waitUntil(t, "a request stuck at Port", func() bool { return g.in("r_1") == 1 })
	go func() { answers <- f.callStatus(token, "GET", "/actions/runs/r_1") }()
	waitUntil(t, "a request queued behind it", func() bool { return p.Waiting() == 1 })

	revoked := make(chan int, 1)
	go func() { revoke(); revoked <- g.in("r_1") }()
	select {
	case inside := <-revoked:
		if inside != 0 {
			t.Fatalf("revoke returned with %d of the run's requests still being sent to Port", inside)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("revoke hangs on a request stuck at Port")
	}
	for range 2 {
		if code := <-answers; code != http.StatusServiceUnavailable {
			t.Errorf("a request of the revoked run: HTTP %d, want 503 run_ended", code)
		}
	}
	if n := forwards.Load(); n != 1 {
		t.Fatalf("%d requests sent to Port, want only the one before revoke", n)
	}
}

// blockingMasker holds a request between its checks and its forward (the masking of its
// body), so that the run can be revoked right there.
type blockingMasker struct {
	reached, release chan struct{}
}

func (m *blockingMasker) Mask(v any) any {
	if _, body := v.(map[string]any); body {
		close(m.reached)
		<-m.release
	}
	return v
}

// A request that found its token before the revoke and reaches its forward after it is not
// sent to Port.
func TestRequestPastItsRunsRevokeIsNotSent(t *testing.T) {
	var forwards atomic.Int32
	fwd := func(context.Context, portproxy.Request) (portproxy.Response, error) {
		forwards.Add(1)
		return portproxy.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{}`)}, nil
	}
	p, f := serveProxy(t, fwd, portproxy.Options{})
	token, revoke := p.Register("r_1", "act", "", nil)
	m := &blockingMasker{reached: make(chan struct{}), release: make(chan struct{})}
	p.SetMask(token, m)
	answer := make(chan int, 1)
	go func() { answer <- f.callStatusBody(token, "POST", "/actions/runs/r_1/logs", `{"message":"x"}`) }()
	select {
	case <-m.reached:
	case <-time.After(20 * time.Second):
		t.Fatal("the request never reached its masking")
	}
	revoke()
	close(m.release)
	if code := <-answer; code != http.StatusServiceUnavailable {
		t.Errorf("HTTP %d, want 503 run_ended", code)
	}
	if n := forwards.Load(); n != 0 {
		t.Fatalf("a request was sent to Port %d times after its run's revoke returned", n)
	}
}

// The same through real HTTP on both sides, under load: clients hammer a run's token while
// it is revoked, some of their requests stuck at Port (every eighth one waits there until
// cancelled), some queued, some racing the revoke; the upstream must see no request sent
// after the revoke returned, and none may still be on its way then. Each iteration is a
// fresh run.
func TestRevokeUnderLoad(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limits portproxy.Limits
	}{
		{"in flight", portproxy.Limits{MaxConcurrentPerRun: 16, MaxConcurrent: 16}},
		{"queued", portproxy.Limits{MaxConcurrentPerRun: 2, MaxConcurrent: 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newLateUpstream(t)
			p, f := serveProxy(t, u.forward, portproxy.Options{Limits: tc.limits})
			for i := range 40 {
				run := "r_" + strconv.Itoa(i)
				u.reset(run)
				token, revoke := p.Register(run, "act", "", nil)
				var clients sync.WaitGroup
				for range 8 {
					clients.Go(func() {
						for f.callStatus(token, "GET", "/actions/runs/"+run) != http.StatusUnauthorized {
						}
					})
				}
				waitUntil(t, "requests at Port, one held there", func() bool { return u.seen.Load() >= 8 && u.held.Load() >= 1 })
				revoke()
				u.ended.Store(true)
				if n := u.sending.Load(); n != 0 {
					t.Fatalf("revoke returned with %d of the run's requests still being sent to Port", n)
				}
				clients.Wait()
				if n := u.late.Load(); n != 0 {
					t.Fatalf("Port got %d requests sent after the run's revoke returned", n)
				}
			}
		})
	}
}

// lateUpstream is Port on 127.0.0.1 behind a Forwarder that tags what it sends once the
// run's revoke has returned (ended), so the upstream can count it. Only the current run's
// requests count as seen or are held: one of an earlier run's that reaches the upstream
// late (the connection had it before its cancel) must not stand for the current run's.
type lateUpstream struct {
	srv    *httptest.Server
	client *http.Client

	run     atomic.Pointer[string] // the current run's path
	ended   atomic.Bool
	sending atomic.Int32 // in the Forwarder
	seen    atomic.Int32 // the current run's requests the upstream got
	held    atomic.Int32 // held until cancelled
	late    atomic.Int32 // got, sent after ended
}

func newLateUpstream(t *testing.T) *lateUpstream {
	u := &lateUpstream{client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}}
	stop := make(chan struct{})
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Sent-After-Revoke") != "" {
			u.late.Add(1)
		}
		if r.URL.Path == *u.run.Load() && u.seen.Add(1)%8 == 0 {
			u.held.Add(1)
			select {
			case <-r.Context().Done():
			case <-stop:
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(func() { close(stop); u.srv.Close() })
	return u
}

func (u *lateUpstream) reset(run string) {
	path := "/v1/actions/runs/" + run
	u.run.Store(&path)
	u.ended.Store(false)
	u.seen.Store(0)
	u.held.Store(0)
}

func (u *lateUpstream) forward(ctx context.Context, rq portproxy.Request) (portproxy.Response, error) {
	u.sending.Add(1)
	defer u.sending.Add(-1)
	req, err := http.NewRequestWithContext(ctx, rq.Method, u.srv.URL+rq.Path, nil)
	if err != nil {
		return portproxy.Response{}, err
	}
	if u.ended.Load() {
		req.Header.Set("X-Sent-After-Revoke", "1")
	}
	resp, err := u.client.Do(req)
	if err != nil {
		return portproxy.Response{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return portproxy.Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: body}, err
}

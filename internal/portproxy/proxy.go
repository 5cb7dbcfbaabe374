// Package portproxy lets a run's command call Port's API through the agent
// (README "Scripts calling Port"): a loopback HTTP server that accepts a token
// valid for one run only, checks the route against what that run may touch,
// and forwards the request with the agent's own credentials, rate limiter and
// retries. The command never sees the agent's credentials.
//
// What a run may call:
//   - its run's blueprint entities: any method on /v1/blueprints/{bp}/entities
//     and /v1/blueprints/{bp}/entities/{id}, and GET /v1/blueprints/{bp};
//     entity writes (bulk too) get the run's run_id in the query, so Port ties
//     the change to the run; every run_id-like parameter the command sent is
//     dropped;
//   - its own run: GET and PATCH /v1/actions/runs/{own}, GET and POST
//     /v1/actions/runs/{own}/logs;
//   - whatever the action's portAPI.allow lists (see package allowrule).
//
// Whatever the rules say, a request that would end a run (a logs POST with
// terminationStatus, a run PATCH with status) is refused, because only the
// agent closes runs, exactly once; so is /v1/auth/.
//
// With Options.BindToProcess a token works only from its run's processes (Bind,
// peer_linux.go); Options.Limits bound what one run, and all of them, may ask
// of the agent; what a command sends to its run's log or run is masked like
// its output (SetMask).
package portproxy

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/httpserve"
)

// MaxBody is the largest request body the proxy takes (Port's own limit).
const MaxBody = 1 << 20

// Request is what the proxy asks the Forwarder to send to Port.
type Request struct {
	Method      string
	Path        string // escaped, from the API root, starting with "/v1/"
	Query       url.Values
	ContentType string
	Body        []byte // nil for none
	RunID       string
}

// Response is Port's answer, whatever its status.
type Response struct {
	StatusCode int
	Header     http.Header
	Body       []byte
}

// Forwarder sends a request to Port with the agent's credentials (portapi.Client.Forward,
// adapted). It returns an error only when Port gave no final answer.
type Forwarder func(ctx context.Context, rq Request) (Response, error)

// Options configures a Proxy.
type Options struct {
	Logger *zap.Logger // default zap.NewNop()
	// RequestTimeout bounds one proxied request, retries included; default 2m.
	RequestTimeout time.Duration
	// BindToProcess binds each token to its run's processes: a request is served only when
	// the process holding the client end of its connection is the pid given to Bind or one
	// of its descendants, so a token read from another run's /proc/<pid>/environ is
	// useless there. Linux only (see ProcessBindingSupported); elsewhere New ignores it.
	BindToProcess bool
	// BindWait is how long a request may wait for its token's Bind (the command's first
	// request can race the executor's OnStart); default 5s.
	BindWait time.Duration
	// Limits keep one run (or all of them) a bounded guest of the agent.
	Limits Limits
}

// Proxy is the handler and its token registry. It is safe for concurrent use.
type Proxy struct {
	fwd      Forwarder
	log      *zap.Logger
	timeout  time.Duration
	bind     bool
	bindWait time.Duration
	limits   Limits
	slots    chan struct{} // MaxConcurrent: one per request being handled
	lim      *rate.Limiter // all runs' share of the budget; nil: none

	mu     sync.Mutex
	grants map[[sha256.Size]byte]*grant // keyed by the token's hash
}

type grant struct {
	runID     string
	action    string
	blueprint string
	allow     []config.AllowRule
	ctx       context.Context // cancelled on revoke: in-flight requests stop
	cancel    context.CancelFunc

	bound    chan struct{} // closed by the first Bind; root is set before
	bindOnce sync.Once
	root     int // the pid every process of the run descends from

	mask atomic.Pointer[func(any) any] // SetMask: the run's log masking

	slots  chan struct{} // MaxConcurrentPerRun
	queued atomic.Int32  // requests waiting for one of slots
	lim    *rate.Limiter // the run's share of the budget; nil: none
}

// New returns a Proxy that forwards through fwd.
func New(fwd Forwarder, opts Options) *Proxy {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 2 * time.Minute
	}
	if opts.BindWait <= 0 {
		opts.BindWait = 5 * time.Second
	}
	opts.Limits.defaults()
	return &Proxy{
		fwd: fwd, log: opts.Logger, timeout: opts.RequestTimeout,
		bind: opts.BindToProcess && processBinding, bindWait: opts.BindWait,
		limits: opts.Limits, slots: make(chan struct{}, opts.Limits.MaxConcurrent),
		lim:    limiter(opts.Limits.RequestsPerSecond),
		grants: map[[sha256.Size]byte]*grant{},
	}
}

// Register issues a token for one run: 32 random bytes, hex. action names the
// run's action in log lines; blueprint is the run's blueprint ("" when the run
// has none: no entity routes by default); allow is the action's portAPI.allow.
// revoke ends the token (idempotent) and cancels the run's requests in flight.
func (p *Proxy) Register(runID, action, blueprint string, allow []config.AllowRule) (token string, revoke func()) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics rather than return an error)
	token = hex.EncodeToString(b[:])
	key := sha256.Sum256([]byte(token))
	ctx, cancel := context.WithCancel(context.Background())
	g := &grant{
		runID: runID, action: action, blueprint: blueprint, allow: allow, ctx: ctx, cancel: cancel,
		bound: make(chan struct{}),
		slots: make(chan struct{}, p.limits.MaxConcurrentPerRun), lim: limiter(p.limits.RunRequestsPerSecond),
	}
	p.mu.Lock()
	p.grants[key] = g
	p.mu.Unlock()
	var once sync.Once
	return token, func() {
		once.Do(func() {
			p.mu.Lock()
			delete(p.grants, key)
			p.mu.Unlock()
			cancel()
		})
	}
}

// Waiting reports how many requests wait for a slot, all runs together (for tests).
func (p *Proxy) Waiting() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, g := range p.grants {
		n += int(g.queued.Load())
	}
	return n
}

// Tokens reports how many tokens are valid (for tests).
func (p *Proxy) Tokens() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.grants)
}

func (p *Proxy) lookup(token string) *grant {
	if token == "" {
		return nil
	}
	key := sha256.Sum256([]byte(token))
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.grants[key]
}

// Serve listens on addr (use "127.0.0.1:0") until ctx ends. It returns the
// base URL to give commands ("http://127.0.0.1:PORT/v1") and a wait func that
// returns once the server has stopped.
func (p *Proxy) Serve(ctx context.Context, addr string) (string, func() error, error) {
	bound, wait, err := httpserve.Serve(ctx, addr, p, func(srv *http.Server) {
		// Each connection gets its own peer cache, gone with the connection: a cache keyed
		// by address could outlive it and vouch for whoever reuses the port.
		srv.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, &connPeer{})
		}
	})
	if err != nil {
		return "", nil, err
	}
	return "http://" + bound + "/v1", wait, nil
}

// apiErr is an answer of the proxy itself, shaped like Port's errors.
type apiErr struct {
	status  int
	code    string
	message string
}

func writeErr(w http.ResponseWriter, e apiErr) {
	b, _ := json.Marshal(map[string]any{"ok": false, "error": e.code, "message": e.message})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(e.status)
	_, _ = w.Write(b)
}

var (
	errUnauthorized = apiErr{http.StatusUnauthorized, "unauthorized",
		"missing, unknown or expired run token: use $PORT_API_TOKEN, which is valid while its run executes"}
	errForbidden = apiErr{http.StatusForbidden, "forbidden",
		"route not allowed for this run; see portAPI.allow"}
	errTerminate = apiErr{http.StatusForbidden, "forbidden",
		"only port-runner ends a run (exactly once, from the command's exit status): terminationStatus and status are refused"}
	errTooLarge = apiErr{http.StatusRequestEntityTooLarge, "payload_too_large",
		"request body exceeds 1 MiB"}
	errNotRunProcess = apiErr{http.StatusUnauthorized, "unauthorized",
		"this run token is valid only from the processes of its own run"}
	errTooMany = apiErr{http.StatusTooManyRequests, "too_many_requests",
		"too many of this run's requests are waiting for port-runner; retry later"}
	errRunEnded = apiErr{http.StatusServiceUnavailable, "run_ended", "the run ended while the request was waiting for Port"}
	errWaited   = apiErr{http.StatusGatewayTimeout, "gateway_timeout", "the request waited too long for its turn to Port"}
)

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g := p.lookup(bearer(r))
	if g == nil {
		writeErr(w, errUnauthorized)
		return
	}
	log := p.log.With(zap.String("run_id", g.runID), zap.String("action", g.action), zap.String("method", r.Method), zap.String("path", r.URL.Path))
	if p.bind {
		if e, denied := p.checkPeer(r, g); denied {
			log.Warn("refused a Port API request from outside the run's processes", zap.String("reason", e.message), zap.String("peer", r.RemoteAddr))
			writeErr(w, e)
			return
		}
	}
	if !config.AllowMethod(r.Method) {
		w.Header().Set("Allow", "GET, POST, PUT, PATCH, DELETE")
		writeErr(w, apiErr{http.StatusMethodNotAllowed, "method_not_allowed", "method " + r.Method + " is not proxied"})
		return
	}
	segs, ok := splitPath(r.URL.EscapedPath())
	if !ok {
		writeErr(w, apiErr{http.StatusNotFound, "not_found", "not a Port API path under /v1/"})
		return
	}
	if r.ContentLength > MaxBody {
		writeErr(w, errTooLarge)
		return
	}

	// The request's whole life, its wait for a slot and for the budget included, is bounded
	// by the timeout and by its run.
	ctx, cancel := context.WithTimeout(r.Context(), p.timeout)
	defer cancel()
	stop := context.AfterFunc(g.ctx, cancel)
	defer stop()
	release, e := p.acquire(ctx, g)
	if e.status != 0 {
		writeErr(w, e)
		return
	}
	defer release()

	body, e := readBody(r)
	if e.status != 0 {
		writeErr(w, e)
		return
	}
	if e, denied := g.check(r.Method, segs, body); denied {
		log.Info("refused a command's Port API request", zap.Int("code", e.status), zap.String("reason", e.message))
		writeErr(w, e)
		return
	}
	if m := g.mask.Load(); m != nil && runText(r.Method, segs) {
		body = maskJSON(body, *m)
	}
	// The run's share of the budget, then all runs' share: a flood of one run waits here,
	// holding only its own slots, and never takes more of Port than its share.
	if err := waitRate(ctx, g.lim); err != nil {
		writeErr(w, p.waitFailed(g))
		return
	}
	if err := waitRate(ctx, p.lim); err != nil {
		writeErr(w, p.waitFailed(g))
		return
	}
	p.forward(ctx, w, r, g, segs, body, log)
}

// forward sends the checked request to Port and passes the answer on.
func (p *Proxy) forward(ctx context.Context, w http.ResponseWriter, r *http.Request, g *grant, segs []string, body []byte, log *zap.Logger) {
	query := g.query(r.Method, segs, r.URL.Query())
	esc := make([]string, len(segs))
	for i, s := range segs {
		esc[i] = url.PathEscape(s)
	}
	resp, err := p.fwd(ctx, Request{
		Method: r.Method, Path: "/v1/" + strings.Join(esc, "/"), Query: query,
		ContentType: r.Header.Get("Content-Type"), Body: body, RunID: g.runID,
	})
	switch {
	case err != nil && g.ctx.Err() != nil:
		writeErr(w, errRunEnded)
		return
	case err != nil && errors.Is(err, context.DeadlineExceeded):
		log.Warn("proxied request timed out", zap.Error(err))
		writeErr(w, apiErr{http.StatusGatewayTimeout, "gateway_timeout", "Port did not answer in time: " + err.Error()})
		return
	case err != nil:
		log.Warn("proxied request failed", zap.Error(err))
		writeErr(w, apiErr{http.StatusBadGateway, "bad_gateway", "port-runner could not get an answer from Port: " + err.Error()})
		return
	case resp.StatusCode == http.StatusUnauthorized:
		// The agent's own credentials were refused even after a refresh. Passing the 401 on
		// would read as "your run token is invalid".
		log.Warn("Port refused the agent's token on a proxied request")
		writeErr(w, apiErr{http.StatusBadGateway, "bad_gateway", "Port refused port-runner's credentials"})
		return
	}
	log.Debug("proxied a command's Port API request", zap.Int("code", resp.StatusCode))
	for _, h := range []string{"Content-Type", "Location"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(resp.Body)
}

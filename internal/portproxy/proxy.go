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
// of the agent; what a command writes under its run's routes is masked like
// its output (SetMask).
package portproxy

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"net/url"
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
// adapted). It returns an error only when Port gave no final answer, and returns soon after
// ctx ends: a run's revoke waits for its requests being sent.
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

	bound    chan struct{} // closed by the first Bind; root is set before
	bindOnce sync.Once
	root     int // the pid every process of the run descends from

	queued atomic.Int32 // requests waiting for one of live's slots

	mu      sync.Mutex
	mask    Masker // SetMask: the run's log masking
	revoked bool
	live    *live // made by the run's first request (serving): most runs never call the proxy
}

// live is what a run's requests share.
type live struct {
	ctx    context.Context // cancelled on revoke: in-flight requests stop
	cancel context.CancelFunc
	slots  chan struct{} // MaxConcurrentPerRun
	lim    *rate.Limiter // the run's share of the budget; nil: none
	// sending counts the requests being sent to Port, which revoke waits for. It is added
	// to only under the grant's mu and while the grant is not revoked (startSend), so no Add
	// follows revoke's Wait.
	sending sync.WaitGroup
}

// serving is what g's requests share, made by the first; once g is revoked, its ctx is done.
func (p *Proxy) serving(g *grant) *live {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.live == nil {
		ctx, cancel := context.WithCancel(context.Background())
		if g.revoked {
			cancel()
		}
		g.live = &live{ctx: ctx, cancel: cancel,
			slots: make(chan struct{}, p.limits.MaxConcurrentPerRun), lim: limiter(p.limits.RunRequestsPerSecond)}
	}
	return g.live
}

// end revokes g: its requests in flight stop, and any later one finds its run ended. It
// returns once none of them is being sent to Port: those being sent are cancelled and waited
// for (context.AfterFunc cancels them asynchronously), and no other will be.
func (g *grant) end() {
	g.mu.Lock()
	g.revoked = true
	l := g.live
	g.mu.Unlock()
	if l != nil {
		l.cancel()
		l.sending.Wait()
	}
}

// startSend counts a request of g in as being sent to Port (l.sending), unless g is revoked:
// then it must not be sent.
func (g *grant) startSend(l *live) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.revoked {
		return false
	}
	l.sending.Add(1)
	return true
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
// revoke ends the token (idempotent): once it returns, none of the run's requests is being
// sent to Port, nor will be; those being sent are cancelled and waited for, so the Forwarder
// must return soon after its context ends.
func (p *Proxy) Register(runID, action, blueprint string, allow []config.AllowRule) (token string, revoke func()) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics rather than return an error)
	token = hex.EncodeToString(b[:])
	key := sha256.Sum256([]byte(token))
	g := &grant{runID: runID, action: action, blueprint: blueprint, allow: allow, bound: make(chan struct{})}
	p.mu.Lock()
	p.grants[key] = g
	p.mu.Unlock()
	return token, func() { p.revoke(key, g) }
}

// revoke ends the token of g, which is under key; both steps may be repeated.
func (p *Proxy) revoke(key [sha256.Size]byte, g *grant) {
	p.mu.Lock()
	delete(p.grants, key)
	p.mu.Unlock()
	g.end()
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

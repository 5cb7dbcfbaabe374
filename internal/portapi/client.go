// Package portapi is the client of Port's REST API (getport.io) used to report
// action runs: it knows the endpoints, authentication, rate limiting and
// retries, and nothing about the lifecycle of a run.
package portapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/port-runner/port-runner/internal/backoff"
)

// Endpoint labels passed to Options.Observe.
const (
	EndpointAuth     = "auth"
	EndpointRunGet   = "run_get"
	EndpointRunPatch = "run_patch"
	EndpointRunLogs  = "run_logs"
	EndpointProxy    = "proxy"
)

const (
	userAgent       = "port-runner"
	maxResponseBody = 4 << 20 // responses are small JSON; this only guards memory
)

// Options configures a Client.
type Options struct {
	// BaseURL is Port's API root without /v1, e.g. https://api.getport.io.
	// A trailing "/v1" is tolerated and removed, since Port's docs quote
	// API_URL with it.
	BaseURL                string
	ClientID, ClientSecret string
	// RequestsPerSecond is the ceiling of every request of this client, auth
	// included; under it the client paces itself by the budget Port reports.
	// Burst is max(1, ceil(rps)). 0 or less means no ceiling.
	RequestsPerSecond float64
	// HTTPClient defaults to &http.Client{Timeout: 30 * time.Second} on newTransport().
	HTTPClient *http.Client
	// CAFile, with the default HTTPClient, is a PEM bundle trusted besides the system
	// roots: a corporate proxy that re-signs TLS (config port.caFile).
	CAFile string
	// Logger defaults to zap.NewNop().
	Logger *zap.Logger
	// Observe, if set, is called once per HTTP attempt with an endpoint label
	// and the status code (0 for a network error), e.g. for
	// port_requests_total.
	Observe func(endpoint string, code int)
	// MaxInFlight bounds this client's requests waiting for an answer; 0 means 16. Part
	// of it is kept for closing requests (see the scheduler).
	MaxInFlight int
	// OnBudget, if set, gets what Port says remains of the organization's budget, from
	// every answer that carries x-ratelimit-* headers.
	OnBudget func(remaining int)
	// OnWait, if set, gets how long each attempt waited for its turn, by priority.
	OnWait func(priority string, d time.Duration)
	// BaseBackoff and MaxBackoff shape the retry backoff; 0 means 250ms, 30s.
	BaseBackoff, MaxBackoff time.Duration
	// Now is the clock used for token expiry; nil means time.Now.
	Now func() time.Time
}

// Client talks to Port's API. It is safe for concurrent use.
type Client struct {
	base         string
	clientID     string
	clientSecret string
	hc           *http.Client
	log          *zap.Logger
	observe      func(string, int)
	onWait       func(string, time.Duration)
	retry        backoff.Policy
	now          func() time.Time
	sched        *scheduler
	tok          tokenCache
	shared       *sharedHeaders
	encoders     sync.Pool // of *bodyEncoder

	// sleep waits between attempts; replaced in tests to record the waits.
	sleep func(ctx context.Context, d time.Duration) error
}

// maxIdlePerHost keeps a connection to Port for every run that may close at once (the pool
// allows at most 100 per replica) plus the proxy's and the log batches' requests.
const maxIdlePerHost = 128

// newTransport is http.DefaultTransport with room for idle connections: runs end in bursts,
// and with the default 2 idle connections per host most closing requests dialled Port again
// (TCP and TLS) instead of reusing a connection.
func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = maxIdlePerHost
	t.MaxIdleConnsPerHost = maxIdlePerHost
	return t
}

// New validates opts and returns a Client. It makes no request: the first
// call (or Token) fetches the access token.
func New(opts Options) (*Client, error) {
	base := strings.TrimRight(strings.TrimSpace(opts.BaseURL), "/")
	base = strings.TrimSuffix(base, "/v1")
	// The URL is quoted without its password (a gateway in front of Port's API): these
	// errors reach validate --connect's output and the start-up log.
	u, err := url.Parse(base)
	if err != nil && strings.Contains(base, "@") {
		return nil, errors.New("portapi: invalid base URL (not quoted, nor url.Parse's error, which quotes it: it may hold a password)")
	} else if err != nil {
		return nil, fmt.Errorf("portapi: invalid base URL %q: %w", opts.BaseURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("portapi: invalid base URL %q: want http(s)://host", u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("portapi: invalid base URL %q: no query or fragment allowed", u.Redacted())
	}
	if opts.ClientID == "" || opts.ClientSecret == "" {
		return nil, errors.New("portapi: client ID and client secret are required")
	}
	c := &Client{
		base:         base,
		clientID:     opts.ClientID,
		clientSecret: opts.ClientSecret,
		hc:           opts.HTTPClient,
		log:          opts.Logger,
		observe:      opts.Observe,
		retry:        backoff.Policy{Base: opts.BaseBackoff, Max: opts.MaxBackoff},
		now:          opts.Now,
		onWait:       opts.OnWait,
		sched:        newScheduler(opts.RequestsPerSecond, opts.MaxInFlight, nil),
		shared:       newSharedHeaders(),
		sleep:        backoff.Sleep,
	}
	if c.hc == nil {
		tr := newTransport()
		if opts.CAFile != "" {
			if err := trustCA(tr, opts.CAFile); err != nil {
				return nil, err
			}
		}
		c.hc = &http.Client{Timeout: 30 * time.Second, Transport: tr}
	}
	// Never follow a redirect: the request carries the agent's token (or, for auth, its
	// client secret), and Go forwards both to a same-host target. A copy, so the caller's
	// client is left as it was.
	hc := *c.hc
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.hc = &hc
	if c.log == nil {
		c.log = zap.NewNop()
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.onWait == nil {
		c.onWait = func(string, time.Duration) {}
	}
	if opts.OnBudget != nil {
		c.sched.onBudget = opts.OnBudget
	}
	return c, nil
}

// encodeJSON encodes v without HTML escaping: log lines containing <, > or &
// must reach Port exactly as the command wrote them. The encoder and its buffer are kept
// for the next body (every run's closing request has one): the body is a copy of its own.
func (c *Client) encodeJSON(v any) ([]byte, error) {
	e, _ := c.encoders.Get().(*bodyEncoder)
	if e == nil {
		e = &bodyEncoder{}
		e.enc = json.NewEncoder(&e.buf)
		e.enc.SetEscapeHTML(false)
	}
	defer func() {
		if e.buf.Cap() <= maxKeptBody { // one large body must not stay for every later one
			e.buf.Reset()
			c.encoders.Put(e)
		}
	}()
	if err := e.enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.Clone(bytes.TrimRight(e.buf.Bytes(), "\n")), nil
}

// bodyEncoder is a request body's JSON encoder, writing to its buffer.
type bodyEncoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

// maxKeptBody is the largest buffer an encoder is kept with.
const maxKeptBody = 64 << 10

type logFieldsKey struct{}

// WithLogFields returns a context whose requests' log lines carry fields too: the caller
// knows what a request is about (a run's action, say); the client does not.
func WithLogFields(ctx context.Context, fields ...zap.Field) context.Context {
	c := &logFieldsCtx{Context: ctx}
	c.fields = append(append(c.inline[:0], logFieldsOf(ctx)...), fields...)
	return c
}

// logFieldsCtx is context.WithValue's value context with the fields in it: every run's
// context gets one, and WithValue costs the value context, the slice and its boxing.
type logFieldsCtx struct {
	context.Context
	fields []zap.Field
	inline [1]zap.Field // a run's field (its action): no allocation of its own
}

func (c *logFieldsCtx) Value(key any) any {
	if key == (logFieldsKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// logFieldsOf is ctx's fields, shared: not to be changed.
func logFieldsOf(ctx context.Context) []zap.Field {
	if c, ok := ctx.Value(logFieldsKey{}).(*logFieldsCtx); ok {
		return c.fields
	}
	return nil
}

// logFields is a copy of ctx's fields, for a log line to add its own to.
func logFields(ctx context.Context) []zap.Field {
	return append([]zap.Field(nil), logFieldsOf(ctx)...)
}

// trustCA makes tr trust caFile's certificates besides the system's.
func trustCA(tr *http.Transport, caFile string) error {
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		return fmt.Errorf("portapi: CA file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pemBytes) {
		return fmt.Errorf("portapi: CA file %s: no PEM certificate in it", caFile)
	}
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return nil
}

package portproxy

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"go.uber.org/zap"

	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/echo"
)

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
		"only port-runner ends a run (exactly once, from the command's exit status): terminationStatus, status and result are refused"}
	errNever = apiErr{http.StatusForbidden, "forbidden",
		"authentication and credentials routes are never proxied, whatever portAPI.allow says"}
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
	l := p.serving(g)
	log := p.log.With(zap.String("run_id", g.runID), zap.String("action", g.action), zap.String("method", echo.Cut(r.Method)), zap.String("path", echo.Cut(g.masked(r.URL.Path))))
	if p.bind {
		if e, denied := p.checkPeer(r, g, l); denied {
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
	stop := context.AfterFunc(l.ctx, cancel)
	defer stop()
	release, e := p.acquire(ctx, g, l)
	if e.status != 0 {
		writeErr(w, e)
		return
	}
	defer release()

	body, e := p.readBody(ctx, w, r, l)
	if e.status != 0 {
		writeErr(w, e)
		return
	}
	if e, denied := g.check(r.Method, segs, body); denied {
		log.Info("refused a command's Port API request", zap.Int("code", e.status), zap.String("reason", e.message))
		writeErr(w, e)
		return
	}
	if m := g.masker(); m != nil && writesUnderRun(r.Method, segs) {
		body = maskJSON(body, m)
	}
	// The run's share of the budget, then all runs' share: a flood of one run waits here,
	// holding only its own slots, and never takes more of Port than its share.
	if err := waitRate(ctx, l.lim); err != nil {
		writeErr(w, waitFailed(l))
		return
	}
	if err := waitRate(ctx, p.lim); err != nil {
		writeErr(w, waitFailed(l))
		return
	}
	p.forward(ctx, w, r, g, l, segs, body, log)
}

// forward sends the checked request to Port and passes the answer on.
func (p *Proxy) forward(ctx context.Context, w http.ResponseWriter, r *http.Request, g *grant, l *live, segs []string, body []byte, log *zap.Logger) {
	query := g.query(r.Method, segs, r.URL.Query())
	esc := make([]string, len(segs))
	for i, s := range segs {
		esc[i] = url.PathEscape(s)
	}
	resp, err := p.send(ctx, g, l, Request{
		Method: r.Method, Path: "/v1/" + strings.Join(esc, "/"), Query: query,
		ContentType: r.Header.Get("Content-Type"), Body: body, RunID: g.runID,
	})
	switch {
	case errors.Is(err, errRevoked) || err != nil && l.ctx.Err() != nil:
		writeErr(w, errRunEnded)
		return
	case err != nil && errors.Is(err, context.DeadlineExceeded):
		log.Warn("proxied request timed out", zap.String("error", g.masked(err.Error())))
		writeErr(w, apiErr{http.StatusGatewayTimeout, "gateway_timeout", "Port did not answer in time: " + err.Error()})
		return
	case err != nil:
		log.Warn("proxied request failed", zap.String("error", g.masked(err.Error())))
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

// errRevoked is send's refusal of a request whose run was revoked after it found its token.
var errRevoked = errors.New("portproxy: the run's token was revoked")

// send hands rq to the Forwarder unless g is revoked; revoke waits for it to return.
func (p *Proxy) send(ctx context.Context, g *grant, l *live, rq Request) (Response, error) {
	if !g.startSend(l) {
		return Response{}, errRevoked
	}
	defer l.sending.Done()
	return p.fwd(ctx, rq)
}

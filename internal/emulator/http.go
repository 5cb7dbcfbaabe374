package emulator

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ServeHTTP answers one request. The order of checks mirrors Port's stack: an
// outage (SetDown) answers before anything else, then the org's rate budget
// (a gateway concern, so every request counts, auth included), then injected
// backend faults (FailNext), then routing and authentication.
//
// Responses are buffered and the request is recorded before the first byte
// reaches the client, so a test that has its answer always finds the request
// in Requests() and the state change in Run().
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := e.opts.Now()
	// Read one byte past the limit: enough to tell "too large" without
	// buffering an unbounded body.
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	r.Body = io.NopCloser(bytes.NewReader(body))

	bw := &bufWriter{header: w.Header()}
	e.serve(bw, r, body, now)
	if bw.status == 0 {
		bw.status = http.StatusOK
	}

	e.mu.Lock()
	e.requests = append(e.requests, Request{
		Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Status: bw.status,
		Body: body, At: now, Token: bearer(r),
	})
	if n := e.opts.MaxRequests; n > 0 && len(e.requests) > n {
		e.requests = slices.Delete(e.requests, 0, len(e.requests)-n)
	}
	// The state change came before this record: wake WaitRun again, so a condition that
	// also reads Requests() sees the request that made the change.
	e.notifyLocked()
	e.mu.Unlock()
	e.logf("emulator: %s %s -> %d", r.Method, r.URL.Path, bw.status)

	w.WriteHeader(bw.status)
	w.Write(bw.buf.Bytes())
}

func (e *Emulator) serve(bw *bufWriter, r *http.Request, body []byte, now time.Time) {
	e.mu.Lock()
	if e.down {
		e.mu.Unlock()
		writeErr(bw, errf(http.StatusServiceUnavailable, "internal_error", "Port API is unavailable (emulator SetDown)"))
		return
	}
	if !e.budgetLocked(now, bw.header) {
		e.mu.Unlock()
		writeErr(bw, errf(http.StatusTooManyRequests, "too_many_requests", "organization request budget exhausted"))
		return
	}
	if e.failN > 0 && strings.HasPrefix(r.URL.Path, "/v1/actions") {
		e.failN--
		code := e.failCode
		e.mu.Unlock()
		writeErr(bw, errf(code, "internal_error", "injected fault (emulator FailNext)"))
		return
	}
	e.mu.Unlock()

	bw.body, bw.now = body, now
	e.mux.ServeHTTP(bw, r)
	if st := bw.status; !bw.routed && (st == http.StatusNotFound || st == http.StatusMethodNotAllowed) {
		// The mux's own 404/405 answers are plain text; Port answers JSON.
		// Allow (set by the mux on 405) stays in the header.
		bw.buf.Reset()
		bw.status = 0
		code, msg := "not_found", "is not a route of the Port API"
		if st == http.StatusMethodNotAllowed {
			code, msg = "method_not_allowed", "method not allowed on this route"
		}
		bw.header.Del("X-Content-Type-Options")
		writeErr(bw, errf(st, code, "%s %s: %s", r.Method, r.URL.Path, msg))
	}
}

// budgetLocked counts the request against the org budget and sets the x-ratelimit-* headers
// Port sends on every response: limit and period (seconds) of the window, what remains of
// it, and its reset as UTC epoch seconds. Windows are fixed and aligned to the epoch, so
// every agent sharing the emulator sees the same reset. It reports whether the request is
// within budget; a request over it still counts, as at a gateway.
func (e *Emulator) budgetLocked(now time.Time, h http.Header) bool {
	if e.budget <= 0 {
		return true
	}
	start := now.Truncate(e.window)
	if !start.Equal(e.winStart) {
		e.winStart, e.winCount = start, 0
		if e.next != nil { // SetBudget's change starts with a window
			e.budget, e.window, e.next = e.next.limit, e.next.window, nil
			e.budgetSince = now.Truncate(e.window)
			return e.budgetLocked(now, h)
		}
	}
	e.winCount++
	end := e.winStart.Add(e.window)
	h.Set("x-ratelimit-limit", strconv.Itoa(e.budget))
	h.Set("x-ratelimit-remaining", strconv.Itoa(max(0, e.budget-e.winCount)))
	h.Set("x-ratelimit-reset", strconv.FormatInt(end.Unix(), 10))
	h.Set("x-ratelimit-period", strconv.FormatInt(int64(e.window/time.Second), 10))
	if e.winCount > e.budget {
		e.rejected++
		h.Set("Retry-After", strconv.FormatInt(max(1, ceilSeconds(end.Sub(now))), 10))
		return false
	}
	return true
}

func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// bufWriter holds the response until the request is recorded. It also carries
// the already-read body and the request time to the route handlers.
type bufWriter struct {
	header http.Header
	status int
	buf    bytes.Buffer
	routed bool // set by our handlers; false means the mux answered 404/405 itself
	body   []byte
	now    time.Time
}

func (b *bufWriter) Header() http.Header { return b.header }
func (b *bufWriter) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}
func (b *bufWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.buf.Write(p)
}

// handlerFunc is a route: it gets the request body and time and returns the
// status and JSON value to answer, or an error answer.
type handlerFunc func(r *http.Request, body []byte, now time.Time) (int, any, error)

func (e *Emulator) routes() {
	e.mux = http.NewServeMux()
	e.handle("POST /v1/auth/access_token", false, e.handleToken)
	e.handle("GET /v1/actions/runs/{id}", true, e.handleGetRun)
	e.handle("PATCH /v1/actions/runs/{id}", true, e.handlePatchRun)
	e.handle("POST /v1/actions/runs/{id}/logs", true, e.handlePostLogs)
	e.handle("GET /v1/actions/runs/{id}/logs", true, e.handleGetLogs)
	e.handle("POST /v1/actions/{action}/runs", true, e.handleCreateRun)
	e.handle("POST /v1/blueprints/{blueprint}/entities", true, e.handleUpsertEntity)
	e.handle("GET /v1/blueprints/{blueprint}/entities", true, e.handleListEntities)
	e.handle("GET /v1/blueprints/{blueprint}/entities/{id}", true, e.handleGetEntity)
	e.handle("DELETE /v1/blueprints/{blueprint}/entities/{id}", true, e.handleDeleteEntity)
	e.nodeRunRoutes()
	e.claimRoutes()
}

func (e *Emulator) handle(pattern string, auth bool, fn handlerFunc) {
	e.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		bw := w.(*bufWriter)
		bw.routed = true
		if auth {
			if err := e.checkToken(r, bw.now); err != nil {
				writeErr(bw, err)
				return
			}
		}
		status, v, err := fn(r, bw.body, bw.now)
		if err != nil {
			writeErr(bw, err)
			return
		}
		writeJSON(bw, status, v)
	})
}

func (e *Emulator) checkToken(r *http.Request, now time.Time) error {
	tok := bearer(r)
	if tok == "" {
		return errf(http.StatusUnauthorized, "unauthorized", "missing bearer token")
	}
	e.mu.Lock()
	t, ok := e.tokens[tok]
	e.mu.Unlock()
	switch {
	case !ok:
		return errf(http.StatusUnauthorized, "unauthorized", "unknown access token")
	case t.revoked || !now.Before(t.expires):
		return errf(http.StatusUnauthorized, "token_expired", "access token expired")
	}
	return nil
}

func (e *Emulator) handleToken(_ *http.Request, body []byte, now time.Time) (int, any, error) {
	var in struct {
		ClientID     string `json:"clientId"`
		ClientSecret string `json:"clientSecret"`
	}
	if err := decode(body, &in, false); err != nil {
		return 0, nil, err
	}
	idOK := subtle.ConstantTimeCompare([]byte(in.ClientID), []byte(e.opts.ClientID)) == 1
	secretOK := subtle.ConstantTimeCompare([]byte(in.ClientSecret), []byte(e.opts.ClientSecret)) == 1
	if !idOK || !secretOK || in.ClientID == "" {
		return 0, nil, errf(http.StatusUnauthorized, "unauthorized", "invalid clientId or clientSecret")
	}
	tok := randomID(40)
	e.mu.Lock()
	e.tokens[tok] = token{expires: now.Add(e.opts.TokenTTL)}
	e.mu.Unlock()
	return http.StatusOK, map[string]any{
		"ok": true, "accessToken": tok,
		"expiresIn": int64(e.opts.TokenTTL / time.Second), "tokenType": "Bearer",
	}, nil
}

// decode parses a JSON object body. Strict mode rejects unknown fields as
// Port's schema validation does, so a client typo fails loudly in tests.
func decode(body []byte, v any, strict bool) error {
	if len(body) > maxBody {
		return errf(http.StatusRequestEntityTooLarge, "payload_too_large", "request body exceeds %d bytes", maxBody)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return errf(http.StatusUnprocessableEntity, "invalid_request", "invalid JSON body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errf(http.StatusUnprocessableEntity, "invalid_request", "invalid JSON body: data after the object")
	}
	return nil
}

func writeErr(bw *bufWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = errf(http.StatusInternalServerError, "internal_error", "%v", err)
	}
	writeJSON(bw, ae.Status, map[string]any{"ok": false, "error": ae.Code, "message": ae.Message})
}

func writeJSON(bw *bufWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"ok":false,"error":"internal_error","message":"cannot encode response"}`)
	}
	bw.header.Set("Content-Type", "application/json; charset=utf-8")
	bw.WriteHeader(status)
	bw.Write(b)
}

// fmtTime writes times the way Port does: UTC, millisecond precision.
func fmtTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

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

func (e *Emulator) handleGetRun(r *http.Request, _ []byte, _ time.Time) (int, any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	run, err := e.lookupLocked(r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"ok": true, "run": toWire(run)}, nil
}

func (e *Emulator) handleGetLogs(r *http.Request, _ []byte, _ time.Time) (int, any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	run, err := e.lookupLocked(r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	logs := make([]wireLog, 0, len(run.Logs))
	for _, l := range run.Logs {
		logs = append(logs, wireLog{l.Message, l.TerminationStatus, l.StatusLabel, fmtTime(l.CreatedAt)})
	}
	return http.StatusOK, map[string]any{"ok": true, "runLogs": logs}, nil
}

func (e *Emulator) handlePatchRun(r *http.Request, body []byte, now time.Time) (int, any, error) {
	var in struct {
		Status        *string   `json:"status"`
		StatusLabel   *string   `json:"statusLabel"`
		Link          *[]string `json:"link"`
		Summary       *string   `json:"summary"`
		ExternalRunID *string   `json:"externalRunId"`
	}
	if err := decode(body, &in, true); err != nil {
		return 0, nil, err
	}
	if in.Status != nil && !terminal(*in.Status) {
		return 0, nil, errf(http.StatusUnprocessableEntity, "invalid_request", "status must be SUCCESS or FAILURE, got %q", *in.Status)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	run, err := e.openRunLocked(r.PathValue("id"), in.Status != nil)
	if err != nil {
		return 0, nil, err
	}
	// Port's rule: every key present overrides the previous value.
	if in.StatusLabel != nil {
		run.StatusLabel = *in.StatusLabel
	}
	if in.Link != nil {
		run.Link = append([]string{}, (*in.Link)...)
	}
	if in.Summary != nil {
		run.Summary = *in.Summary
	}
	if in.ExternalRunID != nil {
		run.ExternalRunID = *in.ExternalRunID
	}
	if in.Status != nil {
		e.terminateLocked(run, *in.Status, now)
	}
	run.UpdatedAt = now
	e.notifyLocked()
	return http.StatusOK, map[string]any{"ok": true, "run": toWire(run)}, nil
}

func (e *Emulator) handlePostLogs(r *http.Request, body []byte, now time.Time) (int, any, error) {
	var in struct {
		Message           json.RawMessage `json:"message"`
		TerminationStatus *string         `json:"terminationStatus"`
		StatusLabel       *string         `json:"statusLabel"`
	}
	if err := decode(body, &in, true); err != nil {
		return 0, nil, err
	}
	var msg string
	if len(in.Message) == 0 || in.Message[0] != '"' || json.Unmarshal(in.Message, &msg) != nil {
		return 0, nil, errf(http.StatusUnprocessableEntity, "invalid_request", "body must have required property 'message' of type string")
	}
	if in.TerminationStatus != nil && !terminal(*in.TerminationStatus) {
		return 0, nil, errf(http.StatusUnprocessableEntity, "invalid_request", "terminationStatus must be SUCCESS or FAILURE, got %q", *in.TerminationStatus)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if in.TerminationStatus != nil && len(e.refuseClosings) > 0 {
		code := e.refuseClosings[0]
		e.refuseClosings = e.refuseClosings[1:]
		return 0, nil, errf(code, "invalid_request", "injected refusal of a closing request (emulator RefuseClosings)")
	}
	run, err := e.openRunLocked(r.PathValue("id"), in.TerminationStatus != nil)
	if err != nil {
		return 0, nil, err
	}
	entry := LogEntry{Message: msg, CreatedAt: now}
	if in.StatusLabel != nil {
		entry.StatusLabel = *in.StatusLabel
		run.StatusLabel = *in.StatusLabel
	}
	if in.TerminationStatus != nil {
		entry.TerminationStatus = *in.TerminationStatus
		e.terminateLocked(run, *in.TerminationStatus, now)
	}
	run.Logs = append(run.Logs, entry)
	run.UpdatedAt = now
	e.notifyLocked()
	return http.StatusOK, map[string]any{"ok": true}, nil
}

func (e *Emulator) handleCreateRun(r *http.Request, body []byte, _ time.Time) (int, any, error) {
	var in CreateRunRequest
	if err := decode(body, &in, true); err != nil {
		return 0, nil, err
	}
	run, err := e.CreateRun(r.Context(), r.PathValue("action"), in)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, map[string]any{"ok": true, "run": toWire(&run)}, nil
}

func (e *Emulator) lookupLocked(id string) (*RunState, error) {
	run, ok := e.runs[id]
	if !ok || run.NodeRun { // a workflow node run is not an action run
		return nil, errf(http.StatusNotFound, "not_found", "run %q not found", id)
	}
	return run, nil
}

// terminateLocked ends the run: after this Port refuses every change.
func (e *Emulator) terminateLocked(run *RunState, status string, now time.Time) {
	run.Status = status
	run.Terminations++
	t := now
	run.EndedAt = &t
}

// rejectLocked answers a change to an ended run, counting a repeated
// termination so tests can catch agents that close a run twice.
// openRunLocked finds a run that may still change: Port refuses every change to a
// terminated run, and counts a repeated termination.
func (e *Emulator) openRunLocked(id string, terminating bool) (*RunState, error) {
	run, err := e.lookupLocked(id)
	if err != nil {
		return nil, err
	}
	if terminal(run.Status) {
		return nil, e.rejectLocked(run, terminating)
	}
	return run, nil
}

func (e *Emulator) rejectLocked(run *RunState, termination bool) error {
	if termination {
		run.RejectedTerminations++
		e.notifyLocked()
	}
	return errf(http.StatusConflict, "run_already_terminated", "run %s already ended with status %s and can no longer be modified", run.ID, run.Status)
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

// wireRun is a run as GET /v1/actions/runs/{id} returns it.
type wireRun struct {
	ID            string         `json:"id"`
	Status        string         `json:"status"`
	StatusLabel   string         `json:"statusLabel"`
	Blueprint     wireRef        `json:"blueprint"`
	Entity        *wireRef       `json:"entity,omitempty"`
	Action        string         `json:"action"`
	EndedAt       *string        `json:"endedAt"`
	Source        string         `json:"source"`
	Properties    map[string]any `json:"properties"`
	Link          []string       `json:"link"`
	Summary       string         `json:"summary"`
	ExternalRunID string         `json:"externalRunId"`
	CreatedAt     string         `json:"createdAt"`
	UpdatedAt     string         `json:"updatedAt"`
}

type wireRef struct {
	Identifier string `json:"identifier"`
	Title      string `json:"title"`
}

type wireLog struct {
	Message           string `json:"message"`
	TerminationStatus string `json:"terminationStatus,omitempty"`
	StatusLabel       string `json:"statusLabel,omitempty"`
	CreatedAt         string `json:"createdAt"`
}

func toWire(r *RunState) wireRun {
	w := wireRun{
		ID: r.ID, Status: r.Status, StatusLabel: r.StatusLabel,
		Blueprint: wireRef{r.Blueprint, r.Blueprint}, Action: r.Action, Source: "API",
		Properties: r.Properties, Link: r.Link, Summary: r.Summary, ExternalRunID: r.ExternalRunID,
		CreatedAt: fmtTime(r.CreatedAt), UpdatedAt: fmtTime(r.UpdatedAt),
	}
	if r.Entity != "" {
		w.Entity = &wireRef{r.Entity, r.Entity}
	}
	if r.EndedAt != nil {
		s := fmtTime(*r.EndedAt)
		w.EndedAt = &s
	}
	if w.Properties == nil {
		w.Properties = map[string]any{}
	}
	if w.Link == nil {
		w.Link = []string{}
	}
	return w
}

// fmtTime writes times the way Port does: UTC, millisecond precision.
func fmtTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

package portapi

import (
	"context"
	"errors"
	"net/http"
)

// Class is what an answer of Port means for the request that got it. It is decided in one
// place, Classify, and every caller (the retry loop, CloseRun, Permanent, IsRunClosed) reads
// it from there.
type Class int

const (
	// ClassOK: a 2xx.
	ClassOK Class = iota
	// ClassRetry: the same request may succeed later: no answer (a network error), 408,
	// 429 and 5xx. The client retries it with backoff.
	ClassRetry
	// ClassRefresh: 401. The token may have been revoked or expired early: the client
	// gets a new one and retries once; a second 401 is ClassCredentials.
	ClassRefresh
	// ClassCredentials: the agent's credentials are refused (403, or a 401 with a fresh
	// token). Retrying this request does not help, but no run is to blame: every request
	// would fail alike, so callers keep the run for later rather than give up on it.
	ClassCredentials
	// ClassRunClosed: 409. Port refuses changes to a terminated run.
	ClassRunClosed
	// ClassPermanent: any other answer (400, 404, 413, 422, ...): retrying the same
	// request cannot change it.
	ClassPermanent
)

func (c Class) String() string {
	switch c {
	case ClassOK:
		return "ok"
	case ClassRetry:
		return "retry"
	case ClassRefresh:
		return "refresh token"
	case ClassCredentials:
		return "credentials refused"
	case ClassRunClosed:
		return "run already closed"
	default:
		return "permanent"
	}
}

// Classify judges one attempt's outcome: code is the HTTP status, 0 with a non-nil err
// when no (complete) answer came.
func Classify(code int, err error) Class {
	switch {
	case err != nil || code == 0:
		return ClassRetry
	case code >= 200 && code < 300:
		return ClassOK
	case code == http.StatusUnauthorized:
		return ClassRefresh
	case code == http.StatusForbidden:
		return ClassCredentials
	case code == http.StatusConflict:
		return ClassRunClosed
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code >= 500:
		return ClassRetry
	default:
		return ClassPermanent
	}
}

// classOf is the class of the answer err carries; ok is false when err carries none (nil,
// a context error, a decoding error) or the call was cancelled or timed out: a call that
// ran out of time is never judged by the last answer it retried.
func classOf(err error) (c Class, ok bool) {
	var apiErr *APIError
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &apiErr) {
		return 0, false
	}
	c = Classify(apiErr.StatusCode, nil)
	if c == ClassRefresh {
		c = ClassCredentials // an APIError with 401 is the second one: a fresh token was refused too
	}
	return c, true
}

// Permanent reports a Port answer about one request that retrying cannot change
// (ClassPermanent or ClassRunClosed). Credentials refused (401/403), 408, 429 and 5xx are
// not, and a cancelled or timed-out call never is, even when its error carries the last
// retried answer along.
func Permanent(err error) bool {
	c, ok := classOf(err)
	return ok && (c == ClassPermanent || c == ClassRunClosed)
}

// IsRunClosed reports Port's refusal of a change to a run that has already terminated.
func IsRunClosed(err error) bool {
	c, ok := classOf(err)
	return ok && c == ClassRunClosed
}

// MaybeRunEnded reports a refusal of a change to a run (a log, a PATCH) that may mean Port
// has ended the run: 409, the project's reading, or any other answer retrying cannot change
// but 413 (the body, not the run). What Port answers a change to an ended run is not
// documented, so a caller asks Port for the run before acting on it.
func MaybeRunEnded(err error) bool {
	var ae *APIError
	return Permanent(err) && errors.As(err, &ae) && ae.StatusCode != http.StatusRequestEntityTooLarge
}

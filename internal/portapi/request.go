package portapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// APIError is an answer of Port that the client did not retry, or the last one it retried
// when it had to stop; Classify says what it means.
type APIError struct {
	Endpoint   string
	StatusCode int
	Body       string
}

func (e *APIError) Error() string {
	body := strings.TrimSpace(e.Body)
	if len(body) > 512 {
		body = strings.ToValidUTF8(body[:512], "") + "...(truncated)"
	}
	return fmt.Sprintf("port api %s: HTTP %d: %s", e.Endpoint, e.StatusCode, body)
}

// request is one logical API call; do retries it as needed.
type request struct {
	endpoint string
	method   string
	path     string // appended to the base URL
	body     []byte // nil for no body; re-sent as is on every attempt
	// take, if set (and body nil), gives the body when the first attempt's turn
	// comes, so what waits for Port's budget keeps growing instead of queueing; ok
	// false sends nothing. abandon, if closed while the first attempt waits for its
	// turn, gives up the request unsent.
	take    func() (body []byte, ok bool)
	abandon <-chan struct{}
	ctype   string // Content-Type of body; "" means application/json
	prio    Priority
	noAuth  bool // the token request itself
	// reserved sends x-port-reserved-usage: true, as Port's own clients do on the claim
	// and acknowledge routes.
	reserved bool
	// attempts, if set, counts the attempts that got an answer or may have reached Port.
	attempts *int
	runID    string // for log lines, and the scheduler's turns between runs
	// unread: a 2xx answer's body is of no use (do has nowhere to decode it): one of a
	// length Port said is read to the end, for the connection's sake, and dropped rather
	// than kept (attempt).
	unread bool
}

// do runs rq until it succeeds, fails permanently or ctx is done, and decodes
// a 2xx JSON answer into out (if non-nil), ignoring unknown fields.
func (c *Client) do(ctx context.Context, rq request, out any) error {
	if err := checkRunID(rq); err != nil {
		return err
	}
	rq.unread = out == nil
	code, _, body, err := c.doRaw(ctx, rq)
	if err != nil {
		return err
	}
	if code >= 200 && code < 300 {
		if out != nil && len(bytes.TrimSpace(body)) > 0 {
			if err := json.Unmarshal(body, out); err != nil {
				return fmt.Errorf("decode %s response: %w", rq.endpoint, err)
			}
		}
		return nil
	}
	return &APIError{Endpoint: rq.endpoint, StatusCode: code, Body: string(body)}
}

// doRaw runs rq until Port gives an answer that retrying will not change (any
// answer Classify does not call ClassRetry, except a first 401) and returns it. err
// is set only when no such answer came: ctx ended, or no token could be had.
func (c *Client) doRaw(ctx context.Context, rq request) (int, http.Header, []byte, error) {
	var (
		lastErr   error
		retries   int
		refreshed bool
		waited    = waits{asked: c.sched.now()}
	)
	for {
		var token string
		if !rq.noAuth {
			t, err := c.Token(ctx)
			if err != nil {
				return 0, nil, nil, withLast(err, lastErr)
			}
			token = t
		}
		abandon := rq.abandon
		if rq.take == nil {
			abandon = nil // the body is taken: the request is under way, see it through
		}
		if err := c.waitTurn(ctx, abandon, rq, &waited); err != nil {
			if errors.Is(err, errAbandoned) {
				return 0, nil, nil, errNotSent
			}
			return 0, nil, nil, withLast(err, lastErr)
		}
		if rq.take != nil {
			body, ok := rq.take()
			if !ok {
				c.sched.done(nil, 0)
				return 0, nil, nil, errNotSent
			}
			rq.body, rq.take = body, nil
		}
		code, hdr, body, err := c.attempt(ctx, rq, token)
		c.sched.done(hdr, code)
		if c.observe != nil {
			c.observe(rq.endpoint, code)
		}
		var hint time.Duration
		switch Classify(code, err) {
		case ClassOK:
			return code, hdr, body, nil
		case ClassRefresh:
			if rq.noAuth || refreshed {
				return code, hdr, body, nil
			}
			// The token may have been revoked or expired early: get a new
			// one and try again right away, once.
			refreshed = true
			c.invalidate(token)
			c.log.Info("port answered 401, refreshing the access token",
				append(logFields(ctx), zap.String("endpoint", rq.endpoint), zap.String("run_id", rq.runID))...)
			continue
		case ClassRetry:
			if err != nil {
				if ctx.Err() != nil {
					return 0, nil, nil, withLast(ctx.Err(), err)
				}
				lastErr = err
				break
			}
			lastErr = &APIError{Endpoint: rq.endpoint, StatusCode: code, Body: string(body)}
			hint = min(retryHint(hdr, code, time.Now()), maxHold)
		default:
			return code, hdr, body, nil
		}
		wait := c.backoff(retries, hint)
		retries++
		c.log.Warn("port request failed, retrying",
			append(logFields(ctx), zap.String("endpoint", rq.endpoint), zap.String("run_id", rq.runID),
				zap.Int("code", code), zap.Int("attempt", retries),
				zap.Duration("wait", wait), zap.Error(lastErr))...)
		if err := c.sleep(ctx, wait); err != nil {
			return 0, nil, nil, withLast(err, lastErr)
		}
	}
}

// closingWaitWarning is how long a closing may wait for its turn before the agent says so:
// a run that waits this long shows as running in Port although its command has ended.
const closingWaitWarning = 10 * time.Second

// waitTurn waits for the scheduler to let rq's next attempt start. w keeps count across
// attempts: a run's closing whose attempt starts more than closingWaitWarning after it was
// asked for (turns and retries after 429s alike) is logged once.
func (c *Client) waitTurn(ctx context.Context, abandon <-chan struct{}, rq request, w *waits) error {
	start := c.sched.now()
	err := c.sched.wait(ctx, abandon, rq.prio, rq.runID)
	now := c.sched.now()
	c.onWait(rq.prio.String(), now.Sub(start))
	w.turns += now.Sub(start)
	if err == nil && rq.prio == PriorityClose && rq.runID != "" && !w.warned && now.Sub(w.asked) > closingWaitWarning {
		w.warned = true
		c.log.Warn("a run's closing request waited for Port",
			append(logFields(ctx), zap.String("run_id", rq.runID), zap.String("endpoint", rq.endpoint),
				zap.Duration("waited", now.Sub(w.asked)), zap.Duration("for_turns", w.turns))...)
	}
	return err
}

// waits is what one request has waited so far.
type waits struct {
	asked  time.Time     // when the caller asked for the request
	turns  time.Duration // spent waiting for turns
	warned bool
}

// errNotSent: a request with a take func sent nothing (nothing to take, or abandoned).
var errNotSent = errors.New("portapi: nothing sent")

// attempt sends one HTTP request. code is 0 when no response arrived.
func (c *Client) attempt(ctx context.Context, rq request, token string) (code int, hdr http.Header, body []byte, err error) {
	if rq.attempts != nil {
		*rq.attempts++
	}
	var rd io.Reader
	if rq.body != nil {
		rd = bytes.NewReader(rq.body)
	}
	req, err := http.NewRequestWithContext(ctx, rq.method, c.base+rq.path, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header = c.headers(rq, token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	// A 2xx answer nobody decodes (a closing request's, a log batch's) is read all the same,
	// for the connection's sake (a cut-off one fails as below), and dropped.
	body, err = readBody(resp, rq.unread && resp.StatusCode >= 200 && resp.StatusCode < 300)
	if err != nil {
		// The answer was cut off: treat it like a network error, so it is
		// retried (a repeated close is detected as already closed).
		return resp.StatusCode, resp.Header, nil, fmt.Errorf("read response: %w", err)
	}
	return resp.StatusCode, resp.Header, body, nil
}

// backoff is the wait before retry n: see backoff.Policy.
func (c *Client) backoff(n int, hint time.Duration) time.Duration {
	return c.retry.Delay(n, hint)
}

// retryHint reads how long the server asked us to wait. Retry-After is
// honoured on any retryable answer; x-ratelimit-reset only on a 429, because
// Port sends the x-ratelimit-* headers on every answer and the reset of its
// 5-minute window says nothing about how long a 503 lasts.
func retryHint(h http.Header, code int, now time.Time) time.Duration {
	var d time.Duration
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if secs, err := strconv.ParseFloat(v, 64); err == nil {
			d = seconds(secs)
		} else if t, err := http.ParseTime(v); err == nil {
			d = t.Sub(now)
		}
	}
	if code == http.StatusTooManyRequests {
		if secs, ok := headerNumber(h, "X-Ratelimit-Reset"); ok {
			r := seconds(secs)
			if secs > 1e9 { // an epoch timestamp, as some APIs send
				r = time.Unix(int64(secs), 0).Sub(now)
			}
			d = max(d, r)
		}
	}
	return max(d, 0)
}

func seconds(s float64) time.Duration {
	if s <= 0 || s != s {
		return 0
	}
	if s > 24*3600 { // nonsense; the caller's context bounds the wait anyway
		s = 24 * 3600
	}
	return time.Duration(s * float64(time.Second))
}

// withLast keeps the context error matchable with errors.Is while saying
// what was failing when time ran out.
func withLast(err, last error) error {
	if last == nil || !isCtxErr(err) {
		return err
	}
	return fmt.Errorf("%w (last error: %v)", err, last)
}

func isCtxErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

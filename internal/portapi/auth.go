package portapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// defaultTokenLifetime is used when Port's answer carries no expiresIn; it is
// what Port documents (3 hours).
const defaultTokenLifetime = 3 * time.Hour

// tokenCache holds the access token and the one refresh in flight, so that
// concurrent callers whose token ran out share a single auth request.
type tokenCache struct {
	mu        sync.Mutex
	token     string
	expires   time.Time
	refreshAt time.Time
	flight    *tokenFlight
	waiting   int // callers waiting on flight (for tests)
}

type tokenFlight struct {
	done  chan struct{}
	token string
	err   error
}

// Token returns a valid access token, fetching one when none is held or
// when less than 10% of its lifetime (at most 5 minutes) remains.
func (c *Client) Token(ctx context.Context) (string, error) {
	for {
		c.tok.mu.Lock()
		if c.tok.token != "" && c.now().Before(c.tok.refreshAt) {
			t := c.tok.token
			c.tok.mu.Unlock()
			return t, nil
		}
		f := c.tok.flight
		if f == nil {
			f = &tokenFlight{done: make(chan struct{})}
			c.tok.flight = f
			c.tok.mu.Unlock()

			tok, lifetime, obtained, err := c.fetchToken(ctx)

			c.tok.mu.Lock()
			if err == nil {
				margin := min(lifetime/10, 5*time.Minute)
				c.tok.token = tok
				c.tok.expires = obtained.Add(lifetime)
				c.tok.refreshAt = c.tok.expires.Add(-margin)
			}
			f.token, f.err = tok, err
			c.tok.flight = nil
			close(f.done)
			c.tok.mu.Unlock()
			return tok, err
		}
		c.tok.waiting++
		c.tok.mu.Unlock()

		var err error
		select {
		case <-f.done:
			err = f.err
		case <-ctx.Done():
			err = ctx.Err()
		}
		c.tok.mu.Lock()
		c.tok.waiting--
		c.tok.mu.Unlock()
		if err == nil {
			return f.token, nil
		}
		if ctx.Err() == nil && isCtxErr(err) {
			continue // the caller doing the fetch gave up; take over
		}
		return "", err
	}
}

// TokenValid reports whether a token is held and has not expired (for /readyz).
func (c *Client) TokenValid() bool {
	c.tok.mu.Lock()
	defer c.tok.mu.Unlock()
	return c.tok.token != "" && c.now().Before(c.tok.expires)
}

// invalidate drops tok after Port rejected it, unless another caller has
// already replaced it (so a burst of 401s causes one refresh).
func (c *Client) invalidate(tok string) {
	c.tok.mu.Lock()
	defer c.tok.mu.Unlock()
	if c.tok.token == tok {
		c.tok.token = ""
	}
}

func (c *Client) fetchToken(ctx context.Context) (token string, lifetime time.Duration, obtained time.Time, err error) {
	body, err := c.encodeJSON(struct {
		ClientID     string `json:"clientId"`
		ClientSecret string `json:"clientSecret"`
	}{c.clientID, c.clientSecret})
	if err != nil {
		return "", 0, time.Time{}, fmt.Errorf("fetch access token: %w", err)
	}
	// The lifetime counts from before the request, to err on the early side.
	obtained = c.now()
	var resp struct {
		AccessToken string  `json:"accessToken"`
		ExpiresIn   float64 `json:"expiresIn"`
	}
	err = c.do(ctx, request{
		endpoint: EndpointAuth,
		method:   http.MethodPost,
		path:     "/v1/auth/access_token",
		body:     body,
		prio:     PriorityClose, // every other request waits for it
		noAuth:   true,
	}, &resp)
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) && (ae.StatusCode == http.StatusUnauthorized || ae.StatusCode == http.StatusForbidden) {
			return "", 0, time.Time{}, fmt.Errorf("fetch access token: the client credentials were rejected by Port (check clientID and clientSecret): %w", err)
		}
		return "", 0, time.Time{}, fmt.Errorf("fetch access token: %w", err)
	}
	if resp.AccessToken == "" {
		return "", 0, time.Time{}, errors.New("fetch access token: Port's answer has no accessToken")
	}
	lifetime = time.Duration(resp.ExpiresIn * float64(time.Second))
	if lifetime <= 0 {
		lifetime = defaultTokenLifetime
	}
	return resp.AccessToken, lifetime, obtained, nil
}

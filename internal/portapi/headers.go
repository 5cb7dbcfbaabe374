package portapi

import (
	"io"
	"net/http"
	"sync/atomic"
)

// headers are rq's request headers. The values every request shares are the client's
// (sharedHeaders): net/http only reads them, and building each anew cost every request an
// allocation per header. A whole shared map only without a cookie jar: net/http adds the
// jar's cookies to the request's own map.
func (c *Client) headers(rq request, token string) http.Header {
	if rq.body != nil && rq.ctype == "" && token != "" && !rq.reserved && c.hc.Jar == nil {
		return c.shared.forJSON(token) // a closing request's, a log batch's: made once per token
	}
	h := make(http.Header, 5)
	h["User-Agent"] = c.shared.userAgent
	h["Accept"] = c.shared.json
	if rq.body != nil {
		h["Content-Type"] = c.shared.json
		if rq.ctype != "" {
			h["Content-Type"] = []string{rq.ctype}
		}
	}
	if token != "" {
		h["Authorization"] = c.shared.bearer(token)
	}
	if rq.reserved {
		h["X-Port-Reserved-Usage"] = c.shared.yes
	}
	return h
}

// sharedHeaders are header values every request may carry, made once per client; never
// modified, only handed to net/http, which reads them.
type sharedHeaders struct {
	userAgent, json, yes []string
	// auth: the Authorization value of the latest token (a token lasts hours).
	auth atomic.Pointer[authHeader]
}

type authHeader struct {
	token string
	value []string
	// json is all the headers of a request with a JSON body under token, whole: net/http
	// reads a request's headers and, but for a client's cookie jar, never changes them (it
	// clones them to change any).
	json http.Header
}

func newSharedHeaders() *sharedHeaders {
	return &sharedHeaders{userAgent: []string{userAgent}, json: []string{"application/json"}, yes: []string{"true"}}
}

func (h *sharedHeaders) bearer(token string) []string { return h.of(token).value }

// forJSON is the headers of a request with a JSON body under token, not to be changed.
func (h *sharedHeaders) forJSON(token string) http.Header { return h.of(token).json }

// of is token's headers, made when token is new.
func (h *sharedHeaders) of(token string) *authHeader {
	if a := h.auth.Load(); a != nil && a.token == token {
		return a
	}
	a := &authHeader{token: token, value: []string{"Bearer " + token}}
	a.json = http.Header{"User-Agent": h.userAgent, "Accept": h.json, "Content-Type": h.json, "Authorization": a.value}
	h.auth.Store(a)
	return a
}

// readBody reads an answer's body, at most maxResponseBody: one allocation of its size when
// Port says it (Content-Length), as it does for its small JSON answers. Only a small length
// is taken at its word before the bytes arrive: a server that announces megabytes and sends
// little must not cost them at every attempt. drop reads a body of such a length to its end
// and keeps none of it (net/http ends the body at its length).
func readBody(resp *http.Response, drop bool) ([]byte, error) {
	if n := resp.ContentLength; n >= 0 && n <= maxTrustedLength {
		if drop {
			_, err := io.Copy(io.Discard, resp.Body)
			return nil, err
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(resp.Body, body); err != nil {
			return nil, err
		}
		return body, nil
	}
	return io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
}

// maxTrustedLength is the largest Content-Length readBody allocates ahead: far above Port's
// answers (a run, a token), far below maxResponseBody.
const maxTrustedLength = 64 << 10

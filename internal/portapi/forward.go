package portapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/port-runner/port-runner/internal/echo"
)

// ProxyRequest is a request a run's command makes to Port through the agent
// (see package portproxy), sent with the agent's own token.
type ProxyRequest struct {
	Method string
	// Path is the escaped path from the API root, starting with "/v1/".
	Path        string
	Query       url.Values
	ContentType string // of Body; "" means application/json
	Body        []byte // nil for none
	RunID       string // for log lines only
}

// ProxyResponse is Port's answer to a ProxyRequest, whatever its status.
type ProxyResponse struct {
	StatusCode int
	Header     http.Header
	Body       []byte
}

// Forward sends rq with the agent's token through the shared scheduler, below every
// request of the agent's own but the status checks of long runs (the run's own log and
// closing go first), and retries 429, 5xx and network
// errors like every other call, until Port gives an answer that retrying will
// not change, which it returns as is (a 404 or 422 is a response, not an
// error). It returns an error only when no such answer came before ctx ended,
// or the agent has no token. Each attempt is observed as EndpointProxy.
//
// A request that is retried after a lost answer is sent again: fine for
// upserts, gets and patches; a plain create may then answer 409.
func (c *Client) Forward(ctx context.Context, rq ProxyRequest) (ProxyResponse, error) {
	if !strings.HasPrefix(rq.Path, "/v1/") {
		return ProxyResponse{}, fmt.Errorf("portapi: forward: path %s is not under /v1/", echo.Quote(rq.Path))
	}
	if strings.ContainsAny(rq.Path, "?#") {
		return ProxyResponse{}, errors.New("portapi: forward: the path must not carry a query or fragment")
	}
	path := rq.Path
	if len(rq.Query) > 0 {
		path += "?" + rq.Query.Encode()
	}
	code, hdr, body, err := c.doRaw(ctx, request{
		endpoint: EndpointProxy, method: rq.Method, path: path,
		body: rq.Body, ctype: rq.ContentType, prio: PriorityProxy, runID: rq.RunID,
	})
	if err != nil {
		return ProxyResponse{}, fmt.Errorf("forward %s %s: %w", rq.Method, rq.Path, err)
	}
	return ProxyResponse{StatusCode: code, Header: hdr, Body: body}, nil
}

package portapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/port-runner/port-runner/internal/runmsg"
)

// Run statuses as Port reports them.
const (
	StatusInProgress = "IN_PROGRESS"
	StatusSuccess    = "SUCCESS"
	StatusFailure    = "FAILURE"
)

// Closing is the final log request of a run: it carries the last log batch
// and the run's one termination.
type Closing struct {
	Message           string
	TerminationStatus string // "SUCCESS" | "FAILURE"
	StatusLabel       string
	// Output is a workflow node run's output (see NodeRuns); action runs have none.
	Output map[string]any
}

// RunPatch is the body of PATCH /v1/actions/runs/{id}. Nil/empty fields are
// left out, so a patch never clears what an earlier one set.
type RunPatch struct {
	StatusLabel   *string  `json:"statusLabel,omitempty"`
	Link          []string `json:"link,omitempty"`
	Summary       *string  `json:"summary,omitempty"`
	ExternalRunID *string  `json:"externalRunId,omitempty"`
}

func (p RunPatch) empty() bool {
	return p.StatusLabel == nil && len(p.Link) == 0 && p.Summary == nil && p.ExternalRunID == nil
}

// Run is the part of Port's run object that the runner needs.
type Run struct {
	ID, Status, StatusLabel, Action string
	EndedAt                         *time.Time
}

// Terminated reports whether Port shows the run as ended.
func (r Run) Terminated() bool {
	return r.Status == StatusSuccess || r.Status == StatusFailure
}

// checkRunID refuses a run request whose id could mean another path ("..", "a/b") before
// any URL is built from it, as a 400 that was never sent: permanent, since retrying cannot
// make the id valid. The decoder refuses such ids already; this is the last line.
func checkRunID(rq request) error {
	switch rq.endpoint {
	case EndpointRunGet, EndpointRunPatch, EndpointRunLogs, EndpointRunResponse,
		EndpointNodeRunGet, EndpointNodeRunPatch, EndpointNodeRunLogs:
		if err := runmsg.CheckID(rq.runID); err != nil {
			return &APIError{Endpoint: rq.endpoint, StatusCode: http.StatusBadRequest, Body: "not sent: " + err.Error()}
		}
	}
	return nil
}

func runPath(runID string) string {
	return "/v1/actions/runs/" + url.PathEscape(runID)
}

// AppendLog adds message to the run's log. It has log priority: closing
// requests waiting for their turn go first.
func (c *Client) AppendLog(ctx context.Context, runID, message string) error {
	body, err := c.encodeJSON(struct {
		Message string `json:"message"`
	}{message})
	if err == nil {
		err = c.do(ctx, request{
			endpoint: EndpointRunLogs, method: http.MethodPost, path: runPath(runID) + "/logs",
			body: body, prio: PriorityLog, runID: runID,
		}, nil)
	}
	if err != nil {
		return fmt.Errorf("post logs for run %s: %w", runID, err)
	}
	return nil
}

// AppendLogFrom sends one log batch whose message take gives when the request's turn comes,
// not when it is asked for: while Port's budget makes it wait, the batch keeps growing, so a
// tight budget costs fewer, larger requests rather than a queue of them. take returning ok
// false, or abandon closing while the request waits for its turn, sends nothing: sent is
// false and err nil. Once taken, the message is sent (and retried) as is.
func (c *Client) AppendLogFrom(ctx context.Context, runID string, abandon <-chan struct{}, take func() (message string, ok bool)) (sent bool, err error) {
	var encErr error
	err = c.do(ctx, request{
		endpoint: EndpointRunLogs, method: http.MethodPost, path: runPath(runID) + "/logs",
		prio: PriorityLog, runID: runID, abandon: abandon,
		take: func() ([]byte, bool) {
			m, ok := take()
			if !ok {
				return nil, false
			}
			b, err := c.encodeJSON(struct {
				Message string `json:"message"`
			}{m})
			encErr = err
			return b, err == nil
		},
	}, nil)
	return sentOrErr(err, encErr, "post logs for run "+runID)
}

// PatchRunFrom is PatchRun with the patch taken when the request's turn comes (see
// AppendLogFrom): workflow commands that come while it waits coalesce into it. An empty
// patch sends nothing.
func (c *Client) PatchRunFrom(ctx context.Context, runID string, abandon <-chan struct{}, take func() (RunPatch, bool)) (sent bool, err error) {
	var encErr error
	err = c.do(ctx, request{
		endpoint: EndpointRunPatch, method: http.MethodPatch, path: runPath(runID),
		prio: PriorityLog, runID: runID, abandon: abandon,
		take: func() ([]byte, bool) {
			p, ok := take()
			if !ok || p.empty() {
				return nil, false
			}
			b, err := c.encodeJSON(p)
			encErr = err
			return b, err == nil
		},
	}, nil)
	return sentOrErr(err, encErr, "patch run "+runID)
}

func sentOrErr(err, encErr error, what string) (bool, error) {
	switch {
	case errors.Is(err, errNotSent) && encErr != nil:
		return false, fmt.Errorf("%s: %w", what, encErr)
	case errors.Is(err, errNotSent):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("%s: %w", what, err)
	}
	return true, nil
}

// CloseRun sends the run's last log batch together with its termination.
// Port accepts a termination only once, so when it refuses the request with
// an answer retrying cannot change (409, 422, ...: see Permanent) CloseRun asks for the run: if Port already
// shows it as terminated (a redelivery, or an earlier attempt whose answer
// was lost), the run counts as closed: alreadyClosed is true and err nil.
func (c *Client) CloseRun(ctx context.Context, runID string, cl Closing) (alreadyClosed bool, err error) {
	body, err := c.encodeJSON(struct {
		Message           string `json:"message"`
		TerminationStatus string `json:"terminationStatus"`
		StatusLabel       string `json:"statusLabel,omitempty"`
	}{cl.Message, cl.TerminationStatus, cl.StatusLabel})
	if err != nil {
		return false, fmt.Errorf("close run %s: %w", runID, err)
	}
	err = c.do(ctx, request{
		endpoint: EndpointRunLogs, method: http.MethodPost, path: runPath(runID) + "/logs",
		body: body, prio: PriorityClose, runID: runID,
	}, nil)
	if err == nil {
		return false, nil
	}
	// A refusal that retrying cannot change may mean the run was closed already (a
	// redelivery, or an earlier attempt whose answer was lost): ask Port.
	var ae *APIError
	if !Permanent(err) || !errors.As(err, &ae) || ae.Endpoint != EndpointRunLogs {
		return false, fmt.Errorf("close run %s: %w", runID, err)
	}
	run, gerr := c.getRun(ctx, runID, PriorityClose)
	if gerr == nil && run.Terminated() {
		return true, nil
	}
	if gerr != nil {
		err = fmt.Errorf("%w (and checking the run failed: %v)", err, gerr)
	}
	return false, fmt.Errorf("close run %s: %w", runID, err)
}

// PatchRun updates the run's label, links, summary or external run id, with
// log priority. An empty patch sends nothing.
func (c *Client) PatchRun(ctx context.Context, runID string, p RunPatch) error {
	if p.empty() {
		return nil
	}
	body, err := c.encodeJSON(p)
	if err == nil {
		err = c.do(ctx, request{
			endpoint: EndpointRunPatch, method: http.MethodPatch, path: runPath(runID),
			body: body, prio: PriorityLog, runID: runID,
		}, nil)
	}
	if err != nil {
		return fmt.Errorf("patch run %s: %w", runID, err)
	}
	return nil
}

// GetRun fetches the run as Port shows it.
func (c *Client) GetRun(ctx context.Context, runID string) (Run, error) {
	return c.getRun(ctx, runID, PriorityLog)
}

// WatchRun is GetRun at the lowest priority: for a run another replica holds, asked again
// and again until it ends.
func (c *Client) WatchRun(ctx context.Context, runID string) (Run, error) {
	return c.getRun(ctx, runID, PriorityWatch)
}

func (c *Client) getRun(ctx context.Context, runID string, prio Priority) (Run, error) {
	var resp struct {
		Run *struct {
			ID          string          `json:"id"`
			Status      string          `json:"status"`
			StatusLabel string          `json:"statusLabel"`
			Action      json.RawMessage `json:"action"`
			EndedAt     *string         `json:"endedAt"`
		} `json:"run"`
	}
	err := c.do(ctx, request{
		endpoint: EndpointRunGet, method: http.MethodGet, path: runPath(runID),
		prio: prio, runID: runID,
	}, &resp)
	if err == nil && resp.Run == nil {
		err = errors.New(`answer has no "run"`)
	}
	if err != nil {
		return Run{}, fmt.Errorf("get run %s: %w", runID, err)
	}
	r := Run{
		ID:          resp.Run.ID,
		Status:      resp.Run.Status,
		StatusLabel: resp.Run.StatusLabel,
		Action:      actionIdentifier(resp.Run.Action),
	}
	if resp.Run.EndedAt != nil {
		if t, err := time.Parse(time.RFC3339Nano, *resp.Run.EndedAt); err == nil {
			r.EndedAt = &t
		}
	}
	return r, nil
}

// actionIdentifier accepts both shapes Port uses for a run's action: the
// identifier itself (as in the seed) or an object with an "identifier".
func actionIdentifier(raw json.RawMessage) string {
	raw = json.RawMessage(strings.TrimSpace(string(raw)))
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		Identifier string `json:"identifier"`
	}
	if json.Unmarshal(raw, &o) == nil {
		return o.Identifier
	}
	return ""
}

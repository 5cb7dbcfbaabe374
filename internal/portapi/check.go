package portapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// EndpointRunList labels GET /v1/actions/runs.
const EndpointRunList = "run_list"

// listLimit is the most runs GET /v1/actions/runs gives in one answer (Port's API reference).
const listLimit = 1000

// ActiveRuns lists the organization's action runs Port shows in progress, in one request at
// the lowest priority: GET /v1/actions/runs?active=true&limit=1000. complete is false when
// the answer says more follow ("next"), so a run missing from it proves nothing.
func (c *Client) ActiveRuns(ctx context.Context) (active map[string]bool, complete bool, err error) {
	runs, complete, err := c.listActive(ctx, PriorityCheck)
	if err != nil {
		return nil, false, err
	}
	active = make(map[string]bool, len(runs))
	for _, r := range runs {
		active[r.ID] = true
	}
	return active, complete, nil
}

// listActive is GET /v1/actions/runs?active=true&limit=1000 at priority p: the first page of
// the runs in progress, and whether it holds them all.
func (c *Client) listActive(ctx context.Context, p Priority) (runs []ActiveRun, complete bool, err error) {
	var resp struct {
		Runs *[]struct {
			ID               string          `json:"id"`
			Action           json.RawMessage `json:"action"`
			ExternalRunID    string          `json:"externalRunId"`
			PendingExecution bool            `json:"pendingExecution"`
		} `json:"runs"`
		Next any `json:"next"`
	}
	err = c.do(ctx, request{
		endpoint: EndpointRunList, method: http.MethodGet,
		path: fmt.Sprintf("/v1/actions/runs?active=true&limit=%d", listLimit), prio: p,
	}, &resp)
	if err == nil && resp.Runs == nil {
		err = errors.New(`answer has no "runs"`)
	}
	if err != nil {
		return nil, false, fmt.Errorf("list active runs: %w", err)
	}
	runs = make([]ActiveRun, 0, len(*resp.Runs))
	for _, r := range *resp.Runs {
		runs = append(runs, ActiveRun{ID: r.ID, Action: actionIdentifier(r.Action), ExternalRunID: r.ExternalRunID,
			PendingExecution: r.PendingExecution})
	}
	return runs, resp.Next == nil && len(runs) < listLimit, nil
}

// CheckRun is GetRun at the lowest priority: whether a long run is still open.
func (c *Client) CheckRun(ctx context.Context, runID string) (Run, error) {
	return c.getRun(ctx, runID, PriorityCheck)
}

// CheckRun is GetRun at the lowest priority: whether a long node run is still open.
func (n NodeRuns) CheckRun(ctx context.Context, runID string) (Run, error) {
	return n.getRun(ctx, runID, PriorityCheck)
}

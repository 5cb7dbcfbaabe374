package portapi

import (
	"context"
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
	var resp struct {
		Runs *[]struct {
			ID string `json:"id"`
		} `json:"runs"`
		Next any `json:"next"`
	}
	err = c.do(ctx, request{
		endpoint: EndpointRunList, method: http.MethodGet,
		path: fmt.Sprintf("/v1/actions/runs?active=true&limit=%d", listLimit), prio: PriorityCheck,
	}, &resp)
	if err == nil && resp.Runs == nil {
		err = errors.New(`answer has no "runs"`)
	}
	if err != nil {
		return nil, false, fmt.Errorf("list active runs: %w", err)
	}
	active = make(map[string]bool, len(*resp.Runs))
	for _, r := range *resp.Runs {
		active[r.ID] = true
	}
	return active, resp.Next == nil && len(*resp.Runs) < listLimit, nil
}

// CheckRun is GetRun at the lowest priority: whether a long run is still open.
func (c *Client) CheckRun(ctx context.Context, runID string) (Run, error) {
	return c.getRun(ctx, runID, PriorityCheck)
}

// CheckRun is GetRun at the lowest priority: whether a long node run is still open.
func (n NodeRuns) CheckRun(ctx context.Context, runID string) (Run, error) {
	return n.getRun(ctx, runID, PriorityCheck)
}

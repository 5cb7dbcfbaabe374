package portapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Endpoint labels of the claim-and-acknowledge routes (transport: polling).
const (
	EndpointRunClaim     = "run_claim"
	EndpointRunAck       = "run_ack"
	EndpointNodeRunClaim = "node_run_claim"
	EndpointNodeRunAck   = "node_run_ack"
	EndpointOrganization = "organization"
)

// InstallationID is the claiming key Port's own execution agent sends (port-agent's
// PORT_EXEC_AGENT_CLAIMING_KEY): runs of actions that name the execution agent are pending
// under it.
const InstallationID = "_PORT_EXEC_AGENT"

// Claim is one claim-pending request: up to Limit runs, invisible to every other claimer
// for VisibilityTimeout unless acknowledged before.
type Claim struct {
	Limit             int
	VisibilityTimeout time.Duration
}

// Claimed is one run Port handed over: Raw is the object as Port sent it (a run of
// /v1/actions/runs/claim-pending, or a node run of /v1/workflows/runs/claim-pending when
// Node), for runmsg to decode.
type Claimed struct {
	ID   string
	Node bool
	Raw  json.RawMessage
}

// ErrClaimedElsewhere is Port's 409 on an acknowledgement: another claimer acknowledged
// the run first and holds it; this replica must not run it.
var ErrClaimedElsewhere = errors.New("acknowledged by another claimer")

// ClaimRuns asks Port for pending action runs: POST /v1/actions/runs/claim-pending, as
// port-agent (installationId, limit, invocationMethod) and Ocean (visibilityTimeoutMs) call
// it, with x-port-reserved-usage. It waits as PriorityClaim: after the runs' closings and
// log batches, before the commands' own requests.
func (c *Client) ClaimRuns(ctx context.Context, cl Claim) ([]Claimed, error) {
	return c.claim(ctx, cl, EndpointRunClaim, "/v1/actions/runs/claim-pending", "runs", false)
}

// ClaimNodeRuns asks Port for pending workflow node runs: POST
// /v1/workflows/runs/claim-pending, answered with "nodeRuns".
func (c *Client) ClaimNodeRuns(ctx context.Context, cl Claim) ([]Claimed, error) {
	return c.claim(ctx, cl, EndpointNodeRunClaim, "/v1/workflows/runs/claim-pending", "nodeRuns", true)
}

func (c *Client) claim(ctx context.Context, cl Claim, endpoint, path, field string, node bool) ([]Claimed, error) {
	in := map[string]any{
		"installationId":      InstallationID,
		"limit":               cl.Limit,
		"visibilityTimeoutMs": cl.VisibilityTimeout.Milliseconds(),
	}
	if !node {
		in["invocationMethod"] = "WEBHOOK"
	}
	body, err := c.encodeJSON(in)
	if err != nil {
		return nil, fmt.Errorf("claim pending runs: %w", err)
	}
	var resp map[string]json.RawMessage
	err = c.do(ctx, request{
		endpoint: endpoint, method: http.MethodPost, path: path,
		body: body, prio: PriorityClaim, reserved: true,
	}, &resp)
	if err != nil {
		return nil, fmt.Errorf("claim pending runs (%s): %w", path, err)
	}
	var raws []json.RawMessage
	if r, ok := resp[field]; ok && string(r) != "null" {
		if err := json.Unmarshal(r, &raws); err != nil {
			return nil, fmt.Errorf("claim pending runs (%s): %q is not a list: %w", path, field, err)
		}
	}
	out := make([]Claimed, 0, len(raws))
	for _, raw := range raws {
		out = append(out, Claimed{ID: claimedID(raw, node), Node: node, Raw: raw})
	}
	return out, nil
}

// claimedID is a claimed run's id where port-agent reads it ("id" of a run, "identifier"
// of a node run); "" when absent, and the run is then refused by its decoding.
func claimedID(raw json.RawMessage, node bool) string {
	var ids struct {
		ID         string `json:"id"`
		Identifier string `json:"identifier"`
	}
	_ = json.Unmarshal(raw, &ids)
	if node {
		return ids.Identifier
	}
	return ids.ID
}

// AckRun acknowledges a claimed action run (ctx must end before the claim does): PATCH /v1/actions/runs/ack {"runId"} (Ocean's
// body; port-agent sends {"runIds": [...]}) so Port never offers it again. A 409, or an
// answer that acknowledged nothing (port-agent's "ackedCount": 0), is ErrClaimedElsewhere.
func (c *Client) AckRun(ctx context.Context, runID string) error {
	body, err := c.encodeJSON(map[string]string{"runId": runID})
	if err != nil {
		return err
	}
	var resp struct {
		AckedCount *int `json:"ackedCount"`
	}
	err = c.ack(ctx, EndpointRunAck, "/v1/actions/runs/ack", runID, body, &resp)
	if err == nil && resp.AckedCount != nil && *resp.AckedCount == 0 {
		err = ErrClaimedElsewhere
	}
	if err != nil {
		return fmt.Errorf("acknowledge run %s: %w", runID, err)
	}
	return nil
}

// AckNodeRun acknowledges a claimed node run: PATCH /v1/workflows/runs/ack
// {"nodeRunIdentifier"}; a 409 or "acked": false is ErrClaimedElsewhere.
func (c *Client) AckNodeRun(ctx context.Context, runID string) error {
	body, err := c.encodeJSON(map[string]string{"nodeRunIdentifier": runID})
	if err != nil {
		return err
	}
	var resp struct {
		Acked *bool `json:"acked"`
	}
	err = c.ack(ctx, EndpointNodeRunAck, "/v1/workflows/runs/ack", runID, body, &resp)
	if err == nil && resp.Acked != nil && !*resp.Acked {
		err = ErrClaimedElsewhere
	}
	if err != nil {
		return fmt.Errorf("acknowledge node run %s: %w", runID, err)
	}
	return nil
}

// ack sends one acknowledgement. A 409 on the first attempt is another claimer's: it
// acknowledged first. A 409 on a later attempt follows an attempt whose answer was lost,
// which may have acknowledged the run: while the claim holds (the caller's ctx ends before
// it does) nobody else can have claimed it, so that acknowledgement was this one's.
func (c *Client) ack(ctx context.Context, endpoint, path, runID string, body []byte, out any) error {
	attempts := 0
	err := c.do(ctx, request{
		endpoint: endpoint, method: http.MethodPatch, path: path,
		body: body, prio: PriorityLog, runID: runID, reserved: true, attempts: &attempts,
	}, out)
	if cl, ok := classOf(err); ok && cl == ClassRunClosed {
		if attempts > 1 {
			return nil
		}
		return fmt.Errorf("%w (%v)", ErrClaimedElsewhere, err)
	}
	return err
}

// SetStreamer tells Port how this organization's execution agent takes its runs, as
// port-agent does at start-up: PATCH /v1/organization {"settings":
// {"portAgentStreamerName": "KAFKA" | "POLLING"}}.
func (c *Client) SetStreamer(ctx context.Context, name string) error {
	body, err := c.encodeJSON(map[string]any{"settings": map[string]string{"portAgentStreamerName": name}})
	if err == nil {
		err = c.do(ctx, request{endpoint: EndpointOrganization, method: http.MethodPatch, path: "/v1/organization", body: body, prio: PriorityLog}, nil)
	}
	if err != nil {
		return fmt.Errorf("set the organization's agent streamer to %s: %w", name, err)
	}
	return nil
}

// ActiveRun is one run of the organization Port shows in progress, with the externalRunId
// where a polling replica keeps its hold on the run (README "Delivery").
type ActiveRun struct {
	ID, Action, ExternalRunID string
	// PendingExecution: no agent has acknowledged the run yet.
	PendingExecution bool
}

// ListActiveRuns lists the organization's action runs Port shows in progress, in one request
// at the claim priority: GET /v1/actions/runs?active=true&limit=1000 (Port's largest page;
// runs past it are seen once earlier ones end).
func (c *Client) ListActiveRuns(ctx context.Context) ([]ActiveRun, error) {
	runs, _, err := c.listActive(ctx, PriorityClaim)
	return runs, err
}

package emulator

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Delivery is how Port hands the organization's agent runs: on the runs topic (Kafka), or
// held pending for the agent to claim through the API (Polling), as the organization's
// settings.portAgentStreamerName says (port-agent sets it at start-up).
const (
	DeliveryKafka   = "kafka"
	DeliveryPolling = "polling"
)

// Claim limits as Port documents them for node runs (claim-pending-workflow-node-runs):
// limit 1-100, visibilityTimeoutMs 1000-600000. Action runs are held to the same: Port
// documents no route for them, and its clients send the same body.
const (
	maxClaimLimit            = 100
	minVisibility            = time.Second
	maxVisibility            = 10 * time.Minute
	defaultVisibilityTimeout = 60 * time.Second // Ocean's default; port-agent sends none
)

// claimRoutes are the claim-and-acknowledge routes of Port's execution agent and Ocean.
func (e *Emulator) claimRoutes() {
	e.handle("POST /v1/actions/runs/claim-pending", true, e.reserved(e.handleClaimRuns))
	e.handle("PATCH /v1/actions/runs/ack", true, e.reserved(e.handleAckRuns))
	e.handle("POST /v1/workflows/runs/claim-pending", true, e.reserved(e.handleClaimNodeRuns))
	e.handle("PATCH /v1/workflows/runs/ack", true, e.reserved(e.handleAckNodeRun))
	e.handle("PATCH /v1/organization", true, e.handlePatchOrganization)
}

// reserved refuses a claim or acknowledgement without x-port-reserved-usage: true, the
// header both of Port's clients send on these routes. What Port answers without it is not
// known; the emulator's 403 makes a client that forgets it fail loudly.
func (e *Emulator) reserved(fn handlerFunc) handlerFunc {
	return func(r *http.Request, body []byte, now time.Time) (int, any, error) {
		if !strings.EqualFold(r.Header.Get("x-port-reserved-usage"), "true") {
			return 0, nil, errf(http.StatusForbidden, "forbidden", "this route is reserved for Port's agents (x-port-reserved-usage)")
		}
		return fn(r, body, now)
	}
}

// Delivery is how runs created from now on reach the agent.
func (e *Emulator) Delivery() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.delivery
}

// SetDelivery changes how runs created from now on reach the agent.
func (e *Emulator) SetDelivery(d string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.delivery = d
}

type claimRequest struct {
	InstallationID      string   `json:"installationId"`
	Limit               *int     `json:"limit"`
	VisibilityTimeoutMs *int64   `json:"visibilityTimeoutMs"`
	InvocationMethod    string   `json:"invocationMethod,omitempty"` // port-agent's
	Exclude             []string `json:"exclude,omitempty"`          // Ocean's: action identifiers
}

func (c claimRequest) check() (limit int, visibility time.Duration, err error) {
	if c.InstallationID == "" {
		return 0, 0, errf(http.StatusUnprocessableEntity, "invalid_request", "installationId is required")
	}
	limit = maxClaimLimit
	if c.Limit != nil {
		limit = *c.Limit
	}
	if limit < 1 || limit > maxClaimLimit {
		return 0, 0, errf(http.StatusUnprocessableEntity, "invalid_request", "limit must be 1-%d", maxClaimLimit)
	}
	visibility = defaultVisibilityTimeout
	if c.VisibilityTimeoutMs != nil {
		visibility = time.Duration(*c.VisibilityTimeoutMs) * time.Millisecond
	}
	if visibility < minVisibility || visibility > maxVisibility {
		return 0, 0, errf(http.StatusUnprocessableEntity, "invalid_request", "visibilityTimeoutMs must be %d-%d", minVisibility.Milliseconds(), maxVisibility.Milliseconds())
	}
	return limit, visibility, nil
}

func (e *Emulator) handleClaimRuns(_ *http.Request, body []byte, now time.Time) (int, any, error) {
	return e.claim(body, now, false, "runs")
}

func (e *Emulator) handleClaimNodeRuns(_ *http.Request, body []byte, now time.Time) (int, any, error) {
	return e.claim(body, now, true, "nodeRuns")
}

// claim hands out up to limit pending runs, oldest first, that nobody acknowledged and
// whose last claim (if any) expired: each stays invisible to claimers for the visibility
// timeout, then comes back unless it was acknowledged.
func (e *Emulator) claim(body []byte, now time.Time, node bool, field string) (int, any, error) {
	var in claimRequest
	if err := decode(body, &in, true); err != nil {
		return 0, nil, err
	}
	limit, visibility, err := in.check()
	if err != nil {
		return 0, nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	out := []json.RawMessage{}
	for _, id := range e.order {
		if len(out) == limit {
			break
		}
		r := e.runs[id]
		if !r.claimable(now, node) || slices.Contains(in.Exclude, r.Action) {
			continue
		}
		r.ClaimedUntil = now.Add(visibility)
		r.Claims++
		out = append(out, r.claimedObject(in.InstallationID))
	}
	if len(out) > 0 {
		e.notifyLocked()
	}
	return http.StatusOK, map[string]any{"ok": true, field: out}, nil
}

// claimable: held for the agent, not acknowledged, open, not under a live claim.
func (r *RunState) claimable(now time.Time, node bool) bool {
	return r.Pending && r.NodeRun == node && !r.Acked && r.Status == statusInProgress && !now.Before(r.ClaimedUntil)
}

// claimedObject is the run as the claim answers it: port-agent's fixtures
// (tests/unit/streamers/polling/conftest.py) for both kinds, with the run's stored fields
// of Port's run schema (pendingExecution, claimedUntil, installationId).
func (r *RunState) claimedObject(installation string) json.RawMessage {
	var v map[string]any
	if r.NodeRun {
		v = map[string]any{
			"identifier": r.ID, "status": statusInProgress, "config": json.RawMessage(r.claimBody),
		}
	} else {
		v = map[string]any{
			"_id": r.ID, "id": r.ID, "status": statusInProgress,
			"action":  map[string]string{"identifier": r.Action},
			"payload": json.RawMessage(r.claimBody),
		}
	}
	v["pendingExecution"] = true
	v["claimedUntil"] = fmtTime(r.ClaimedUntil)
	v["installationId"] = installation
	b, _ := json.Marshal(v) // maps of strings and raw JSON the emulator encoded itself
	return b
}

// handleAckRuns acknowledges action runs: Ocean's {"runId"} answers 409 when the run was
// acknowledged already; port-agent's {"runIds": [...]} answers how many it acknowledged.
func (e *Emulator) handleAckRuns(_ *http.Request, body []byte, now time.Time) (int, any, error) {
	var in struct {
		RunID  string   `json:"runId"`
		RunIDs []string `json:"runIds"`
	}
	if err := decode(body, &in, true); err != nil {
		return 0, nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if in.RunID != "" {
		if err := e.ackLocked(in.RunID, false, now); err != nil {
			return 0, nil, err
		}
		return http.StatusOK, map[string]any{"ok": true, "ackedCount": 1}, nil
	}
	if len(in.RunIDs) == 0 {
		return 0, nil, errf(http.StatusUnprocessableEntity, "invalid_request", "runId or runIds is required")
	}
	n := 0
	for _, id := range in.RunIDs {
		if e.ackLocked(id, false, now) == nil {
			n++
		}
	}
	return http.StatusOK, map[string]any{"ok": true, "ackedCount": n}, nil
}

func (e *Emulator) handleAckNodeRun(_ *http.Request, body []byte, now time.Time) (int, any, error) {
	var in struct {
		NodeRunIdentifier string `json:"nodeRunIdentifier"`
	}
	if err := decode(body, &in, true); err != nil {
		return 0, nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.ackLocked(in.NodeRunIdentifier, true, now); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"ok": true, "acked": true}, nil
}

// ackLocked acknowledges a claimed run: it is never offered again. Only the first
// acknowledgement counts; any later one is 409, whoever sends it.
func (e *Emulator) ackLocked(id string, node bool, now time.Time) error {
	r, ok := e.runs[id]
	if !ok || !r.Pending || r.NodeRun != node {
		return errf(http.StatusNotFound, "not_found", "no claimed run %q", id)
	}
	if r.Acked {
		r.RejectedAcks++
		e.notifyLocked()
		return errf(http.StatusConflict, "run_already_acknowledged", "run %q was acknowledged already", id)
	}
	r.Acked = true
	r.UpdatedAt = now
	e.notifyLocked()
	return nil
}

// handlePatchOrganization takes port-agent's start-up call: settings.portAgentStreamerName
// KAFKA or POLLING decides how runs created from then on reach the agent.
func (e *Emulator) handlePatchOrganization(_ *http.Request, body []byte, _ time.Time) (int, any, error) {
	var in struct {
		Settings struct {
			PortAgentStreamerName string `json:"portAgentStreamerName"`
		} `json:"settings"`
	}
	if err := decode(body, &in, true); err != nil {
		return 0, nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch in.Settings.PortAgentStreamerName {
	case "KAFKA":
		e.delivery = DeliveryKafka
	case "POLLING":
		e.delivery = DeliveryPolling
	default:
		return 0, nil, errf(http.StatusUnprocessableEntity, "invalid_request", "settings.portAgentStreamerName must be KAFKA or POLLING")
	}
	return http.StatusOK, map[string]any{"ok": true}, nil
}

// holdLocked keeps a new run pending for claims instead of producing its message: body is
// what the claim answers as the run's payload (an action run) or config (a node run).
func (e *Emulator) holdLocked(r *RunState, body []byte) {
	r.Pending = true
	r.claimBody = bytes.Clone(body)
	e.insertLocked(r)
}

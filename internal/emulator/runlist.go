package emulator

import (
	"net/http"
	"strconv"
	"time"
)

// maxListLimit is the largest limit GET /v1/actions/runs takes (Port's API reference).
const maxListLimit = 1000

// handleListRuns answers GET /v1/actions/runs, newest first: active=true keeps the runs still
// in progress, limit (1-1000, default 1000) how many. When more match than limit, the answer
// carries "next", as Port's does when a page does not hold them all.
func (e *Emulator) handleListRuns(r *http.Request, _ []byte, _ time.Time) (int, any, error) {
	q := r.URL.Query()
	limit := maxListLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxListLimit {
			return 0, nil, errf(http.StatusUnprocessableEntity, "invalid_request", "querystring/limit must be between 1 and %d", maxListLimit)
		}
		limit = n
	}
	active := q.Get("active") == "true"
	e.mu.Lock()
	defer e.mu.Unlock()
	runs := []wireRun{}
	more := false
	for i := len(e.order) - 1; i >= 0; i-- {
		run := e.runs[e.order[i]]
		if run.NodeRun || active && terminal(run.Status) {
			continue
		}
		if len(runs) == limit {
			more = true
			break
		}
		runs = append(runs, toWire(run))
	}
	out := map[string]any{"ok": true, "runs": runs}
	if more {
		out["next"] = runs[len(runs)-1].ID
	}
	return http.StatusOK, out, nil
}

// CancelRun ends an action run as FAILURE, as a user does in Port's UI or with
// PATCH /v1/actions/runs/{id} {"status": "FAILURE"}: one termination, and from then on Port
// refuses the run's changes.
func (e *Emulator) CancelRun(id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	run, err := e.openRunLocked(id, true)
	if err != nil {
		return err
	}
	now := e.opts.Now()
	e.terminateLocked(run, statusFailure, now)
	run.UpdatedAt = now
	e.notifyLocked()
	return nil
}

package portapi_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/portapi"
)

// ActiveRuns is one request for every open run; a run ended in Port is missing from it, and
// an answer Port cut short says it is not complete. CheckRun reads one run (or node run).
func TestActiveRunsAndCheckRun(t *testing.T) {
	e, c := emulated(t, emulator.Options{})
	ctx := context.Background()
	e.RegisterRun("r_open", "deploy")
	e.RegisterRun("r_ended", "deploy")
	if err := e.CancelRun("r_ended"); err != nil {
		t.Fatal(err)
	}
	active, complete, err := c.ActiveRuns(ctx)
	if err != nil || !complete || !active["r_open"] || active["r_ended"] || len(active) != 1 {
		t.Fatalf("ActiveRuns = %v, complete %v, %v", active, complete, err)
	}
	if r, err := c.CheckRun(ctx, "r_ended"); err != nil || !r.Terminated() {
		t.Fatalf("CheckRun(ended) = %+v, %v", r, err)
	}
	nr, err := e.CreateNodeRun(ctx, "w", "n", emulator.CreateNodeRunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.CancelWorkflowRun(nr.WorkflowRunID, true); err != nil {
		t.Fatal(err)
	}
	if r, err := (portapi.NodeRuns{C: c}).CheckRun(ctx, nr.ID); err != nil || !r.Terminated() {
		t.Fatalf("CheckRun(node run of a cancelled workflow) = %+v, %v", r, err)
	}
	for i := range 1000 {
		e.RegisterRun(fmt.Sprintf("r_more%d", i), "deploy")
	}
	if active, complete, err := c.ActiveRuns(ctx); err != nil || complete || len(active) != 1000 {
		t.Fatalf("ActiveRuns over the limit = %d runs, complete %v, %v", len(active), complete, err)
	}
}

// Which refusals of a change may mean Port ended the run: none that retrying could change,
// nor a body too large.
func TestMaybeRunEnded(t *testing.T) {
	for code, want := range map[int]bool{409: true, 404: true, 422: true, 400: true, 413: false, 401: false, 403: false, 429: false, 500: false} {
		err := &portapi.APIError{Endpoint: portapi.EndpointRunLogs, StatusCode: code}
		if got := portapi.MaybeRunEnded(fmt.Errorf("post logs: %w", err)); got != want {
			t.Errorf("%d: MaybeRunEnded = %v, want %v", code, got, want)
		}
	}
	if portapi.MaybeRunEnded(context.Canceled) || portapi.MaybeRunEnded(nil) {
		t.Error("no answer read as an ended run")
	}
}

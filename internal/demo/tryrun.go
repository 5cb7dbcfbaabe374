package demo

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"

	"github.com/port-runner/port-runner/internal/agent"
	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/emulator"
)

// newTryRun creates try's run in the emulator: a node run for a workflow node's command
// (--properties as its payload), else an action run; held for claims when polled, else with
// its signed message. kind and props describe it for the header line.
func newTryRun(emu *emulator.Emulator, cfg *config.Config, o TryOptions, polled bool) (created emulator.RunState, msg []byte, kind string, props []byte, err error) {
	kind = "CREATE"
	if o.Entity != "" {
		kind = "DAY-2 on " + o.Entity
	}
	props, _ = json.Marshal(o.Properties)
	req := emulator.CreateRunRequest{Properties: o.Properties, Entity: o.Entity}
	switch wn := cfg.Actions[o.Action].WorkflowNode; {
	case wn != nil:
		// A workflow node's command: try it as the node run it serves, --properties as the
		// node's body. Port's node runs name their node by its url only.
		if wn.URL == "" && wn.Selector == "" {
			return created, nil, "", nil, fmt.Errorf("actions.%s.workflowNode names no url: Port's node runs carry their node's url, not its workflow or node, so try cannot make one that matches", o.Action)
		}
		workflow, node := cmp.Or(wn.Workflow, "try-workflow"), cmp.Or(wn.Node, "try-node")
		in := emulator.CreateNodeRunRequest{Payload: o.Properties, URL: wn.URL}
		kind = "workflow node " + cmp.Or(wn.URL, node)
		if polled {
			created, err = emu.HoldNodeRun(workflow, node, in)
			return created, nil, kind + heldForClaims, props, err
		}
		created, msg, err = emu.PrepareNodeRun(workflow, node, in)
		return created, msg, kind, props, err
	case polled:
		created, err = emu.HoldRun(o.Action, req)
		kind += heldForClaims
	default:
		created, msg, err = emu.PrepareRun(o.Action, req)
	}
	props, _ = json.Marshal(created.Properties)
	return created, msg, kind, props, err
}

// heldForClaims ends the header's kind of a run held for claims.
const heldForClaims = ", held for claims (transport: polling)"

// pollOne runs the agent on transport: polling until Port has the run's termination, then
// stops it as SIGTERM would. An agent that stops first (one that could not start) ends the
// wait: nobody else would close the run.
func pollOne(ctx context.Context, a *agent.Agent, emu *emulator.Emulator, runID string) error {
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- a.Run(runCtx, ctx)
		stop()
	}()
	_, waitErr := emu.WaitRun(runCtx, runID, func(r emulator.RunState) bool { return r.Status != "IN_PROGRESS" })
	stop()
	if err := <-done; err != nil {
		return err
	}
	if waitErr != nil {
		return fmt.Errorf("the run was not closed in Port: %w", waitErr)
	}
	return nil
}

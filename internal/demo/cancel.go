package demo

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/emulator"
)

// tryStatusInterval is how often try --cancel-after asks the emulator about the run.
const tryStatusInterval = time.Second

// checkOftenIfCancelling asks the emulator about a run every tryStatusInterval when it will
// be cancelled after d: a local emulator has no budget to save.
func checkOftenIfCancelling(cfg *config.Config, d time.Duration) {
	if d > 0 {
		cfg.Port.RunStatusInterval = config.Duration(tryStatusInterval)
	}
}

// cancelLater ends run in the emulator after d, as a user in Port does: an action run is set
// to FAILURE, a node run's workflow is cancelled with force. d 0 does nothing. stop waits for
// it (and, before d, calls it off).
func cancelLater(ctx context.Context, out io.Writer, emu *emulator.Emulator, run emulator.RunState, d time.Duration) (stop func()) {
	if d <= 0 {
		return func() {}
	}
	how := "setting it to FAILURE"
	if run.NodeRun {
		how = "cancelling its workflow run " + run.WorkflowRunID + " with force"
	}
	fmt.Fprintf(out, "The run will be cancelled in Port after %s, %s, as a user would (status checks every %s).\n\n", d, how, tryStatusInterval)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var err error
		if run.NodeRun {
			_, err = emu.CancelWorkflowRun(run.WorkflowRunID, true)
		} else {
			err = emu.CancelRun(run.ID)
		}
		if err != nil {
			fmt.Fprintf(out, "Cancelling the run in Port: %v\n", err)
		}
	})
	return func() { cancel(); wg.Wait() }
}

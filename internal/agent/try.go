package agent

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/port-runner/port-runner/executor"
	"github.com/port-runner/port-runner/internal/echo"
)

// Tried is what `port-runner try` shows of one run: the command as it was started (its
// env and run file hold the decrypted secret inputs: print them through Masks), and how
// it ended.
type Tried struct {
	RunID, Action string
	Spec          executor.Spec
	Masks         []string // values the run's log masks (config, secret inputs and env, the token)
	Result        executor.Result
	Closed        bool // Port has the run's termination
}

// Try runs one message's run in this process without Kafka: decode and verify, pick the
// action, execute, report and close it in Port, exactly as a consumed run (the Port API
// proxy for the command included). It is `port-runner try`'s engine.
func (a *Agent) Try(ctx context.Context, raw []byte) (Tried, error) {
	run, err := a.decoder.Decode(raw)
	if err != nil {
		return Tried{}, fmt.Errorf("the run message: %w", err)
	}
	act, ok := a.lookupAction(&run)
	if !ok {
		return Tried{}, fmt.Errorf("action %s is not under actions: in the config", echo.Quote(run.Action))
	}
	if _, err := a.api.Token(ctx); err != nil {
		return Tried{}, fmt.Errorf("port api: %w", err)
	}
	closeRuns, err := a.openRuns()
	if err != nil {
		return Tried{}, err
	}
	defer closeRuns()
	stopProxy, err := a.serve("port api proxy", func(sctx context.Context) (string, func() error, error) {
		url, wait, err := a.proxy.Serve(sctx, "127.0.0.1:0")
		a.proxyURL = url
		return url, wait, err
	})
	if err != nil {
		return Tried{}, err
	}
	defer stopProxy()
	log := a.log.With(zap.String("run_id", run.ID), zap.String("action", run.Action))
	// The run has no partition, but it is held like a consumed one: runs_in_flight and
	// /status count it.
	life := a.lives.receive(runAt{offset: -1}, run.ID, run.Action, nil)
	defer life.leave()
	life.to(phaseClaimed)
	ex := a.execute(ctx, ctx, run, act, life, false, "try", log)
	if ex.finished {
		life.to(phaseCommittable)
	}
	t := Tried{RunID: run.ID, Action: run.Action, Spec: ex.spec, Masks: ex.masks, Result: ex.res, Closed: ex.finished}
	if !ex.finished {
		return t, errors.New("the run was not closed in Port (see the log above)")
	}
	return t, nil
}

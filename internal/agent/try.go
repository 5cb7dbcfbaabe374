package agent

import (
	"context"
	"errors"
	"fmt"

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
	msg, err := a.decoder.Decode(raw)
	if err != nil {
		return Tried{}, fmt.Errorf("the run message: %w", err)
	}
	act, why := a.route(&msg)
	switch why {
	case notConfigured:
		return Tried{}, fmt.Errorf("action %s is not under actions: in the config", echo.Quote(msg.Action))
	case filtered:
		return Tried{}, fmt.Errorf("the run is another deployment's: its action's when is not true for it")
	case unmatchedNode:
		return Tried{}, fmt.Errorf("no action's workflowNode matches the node run (url %s)", echo.Quote(msg.NodeURL))
	}
	if _, err := a.api.Token(ctx); err != nil {
		return Tried{}, fmt.Errorf("port api: %w", err)
	}
	closeRuns, err := a.openRuns()
	if err != nil {
		return Tried{}, err
	}
	defer closeRuns()
	defer a.renew()()
	stopProxy, err := a.serve("port api proxy", func(sctx context.Context) (string, func() error, error) {
		url, wait, err := a.proxy.Serve(sctx, "127.0.0.1:0")
		a.proxyURL = url
		return url, wait, err
	})
	if err != nil {
		return Tried{}, err
	}
	defer stopProxy()
	defer a.startWatch()()
	// The run has no way in, so it holds its lease outright; otherwise it lives as a
	// consumed one from its execution on: runs_in_flight and /status count it.
	r := &run{lease: ownLease{}, at: runAt{offset: -1}, where: "try", stop: ctx, work: ctx, report: ctx}
	a.received(r, msg, act)
	r.life.to(phaseStartDurable)
	closed := a.live(r, execute)
	t := Tried{RunID: msg.ID, Action: msg.Action, Spec: r.ex.spec, Masks: r.ex.masks, Result: r.ex.res, Closed: closed}
	if !closed {
		return t, errors.New("the run was not closed in Port (see the log above)")
	}
	return t, nil
}

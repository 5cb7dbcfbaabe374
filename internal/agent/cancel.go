package agent

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/port-runner/port-runner/internal/portapi"
)

// errCancelledInPort is the cancel cause of a run Port shows ended while its command runs (a
// user set it to FAILURE, its workflow was cancelled): its label reads "cancelled: the run
// was ended in Port" (README "Cancelled in Port").
var errCancelledInPort = errors.New("the run was ended in Port")

// cancelledInPort is the outcome runs_total, /status and the agent's log give such a run.
const cancelledInPort = "cancelled in Port"

// checker reads whether a run is still open in Port, at the lowest priority.
type checker interface {
	CheckRun(ctx context.Context, runID string) (portapi.Run, error)
}

// portWatch stops the commands of runs Port has ended. It learns of them two ways: Port
// refusing a run's log or PATCH (refused), and, for runs watched longer than the interval
// (from their take's start: watchRun), by asking Port once per interval: one GET /v1/actions/runs?active=true for
// all of them when there are two or more action runs open, else one GET per run; the list
// counts as a check of every open run it shows, so runs started moments apart are asked
// about together. Port's answer
// for a run before it is stopped is always one GET of that run, so no guess about what the
// list or a refusal means ever stops a command. A run shorter than the interval costs
// nothing.
type portWatch struct {
	api      *portapi.Client
	interval time.Duration
	log      *zap.Logger
	kick     chan struct{} // a refusal to look at

	mu      sync.Mutex
	runs    map[string]*watched
	listOff bool // Port refused the list: per-run checks from then on
}

type watched struct {
	id        string
	tgt       checker
	node      bool
	log       *zap.Logger
	started   time.Time // what the interval counts from: its take's start (watchRun)
	checked   time.Time // last asked, in the list or on its own
	got       time.Time // last asked on its own (a GET of the run)
	suspect   bool      // Port refused a change of it: ask at once
	gaveUp    bool      // Port refused to say: not asked again
	cancel    context.CancelCauseFunc
	cancelled bool
}

func newPortWatch(api *portapi.Client, interval time.Duration, log *zap.Logger) *portWatch {
	return &portWatch{api: api, interval: interval, log: log, kick: make(chan struct{}, 1), runs: map[string]*watched{}}
}

// watch watches a run until unwatch, counting the interval from since; checked, when not
// zero, counts as its last check (one its caller is about to make). The caller's cancel,
// that of the context its command runs under (which ends it), is called with
// errCancelledInPort if Port ends the run.
func (w *portWatch) watch(cancel context.CancelCauseFunc, id string, tgt checker, node bool, log *zap.Logger, since, checked time.Time) *watched {
	r := &watched{id: id, tgt: tgt, node: node, log: log, started: since, checked: checked, cancel: cancel}
	w.mu.Lock()
	w.runs[id] = r
	w.mu.Unlock()
	return r
}

// unwatch ends watch's watch of r and reports whether Port ended the run meanwhile. A run
// cancelled so stays marked (/status) until forget. (A method, not a closure that watch
// returns: one allocation less per run.)
func (w *portWatch) unwatch(r *watched) (cancelled bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.runs[r.id] == r && !r.cancelled {
		delete(w.runs, r.id)
	}
	return r.cancelled
}

// forget drops a cancelled run's mark once it has left.
func (w *portWatch) forget(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.runs, id)
}

// cancelled reports whether Port ended the run while its command ran.
func (w *portWatch) cancelled(id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.runs[id]
	return r != nil && r.cancelled
}

// refused is the reporter's OnRefused: Port refused a change of the run, which may mean it
// ended it. Asked about at once, unless a GET of the run was made within the interval.
func (w *portWatch) refused(id string, _ error) {
	w.mu.Lock()
	r := w.runs[id]
	if r == nil || r.cancelled || r.suspect {
		w.mu.Unlock()
		return
	}
	r.suspect = true
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// run asks Port about the runs due, every interval and at every refusal, until ctx ends.
func (w *portWatch) run(ctx context.Context) {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.kick:
		}
		w.turn(ctx)
	}
}

// due are the runs to ask about now: suspects whose run was not fetched within the interval,
// and runs watched for the interval and that were not asked within it; list:
// ask with the list, as a long action run is due (a suspect is asked about on its own) and
// another action run is open, which the list covers too (activeRuns).
func (w *portWatch) due(now time.Time) (actionRuns, nodeRuns []*watched, list bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	within := func(t time.Time) bool { return !t.IsZero() && now.Sub(t) < w.interval*9/10 }
	open, listable := 0, false
	for _, r := range w.runs {
		if r.cancelled || r.gaveUp {
			continue
		}
		if !r.node {
			open++
		}
		suspect := r.suspect && !within(r.got)
		long := now.Sub(r.started) >= w.interval && !within(r.checked)
		switch {
		case !(suspect || long):
		case r.node:
			nodeRuns = append(nodeRuns, r)
		default:
			actionRuns = append(actionRuns, r)
			listable = listable || !r.suspect
		}
	}
	return actionRuns, nodeRuns, listable && open >= 2
}

func (w *portWatch) turn(ctx context.Context) {
	actionRuns, nodeRuns, list := w.due(time.Now())
	var active map[string]bool
	if list {
		active = w.activeRuns(ctx)
	}
	for _, r := range append(actionRuns, nodeRuns...) {
		w.mu.Lock()
		// A run unwatched since due (its command ended while the list, or another run's
		// GET, waited for its turn) is not asked about: its closing tells Port's answer.
		gone := w.runs[r.id] != r || r.cancelled
		open := active[r.id] && !r.suspect
		r.checked, r.suspect = time.Now(), false
		w.mu.Unlock()
		if gone || open || ctx.Err() != nil {
			continue
		}
		w.ask(ctx, r)
	}
}

// ask asks Port about r's run with a GET of it, and stops its command if Port ended it.
// It counts as r's check from its start: a turn of the watch meanwhile does not ask again
// (askHeld's GET is one too).
func (w *portWatch) ask(ctx context.Context, r *watched) {
	w.mu.Lock()
	r.checked = time.Now()
	w.mu.Unlock()
	pr, err := r.tgt.CheckRun(ctx, r.id)
	w.mu.Lock()
	r.got = time.Now()
	w.mu.Unlock()
	switch {
	case portapi.Permanent(err):
		w.mu.Lock()
		r.gaveUp = true
		w.mu.Unlock()
		r.log.Warn("Port refused to say whether the run is still open; not asking again", zap.Error(err))
	case err != nil:
		r.log.Debug("could not ask Port whether the run is still open", zap.Error(err))
	case pr.Terminated():
		w.stop(r, pr.Status)
	}
}

// activeRuns is the list of open action runs (one request instead of one each), which counts
// as a check of every action run it shows open, due or not; nil: ask each.
func (w *portWatch) activeRuns(ctx context.Context) map[string]bool {
	w.mu.Lock()
	off := w.listOff
	w.mu.Unlock()
	if off {
		return nil
	}
	active, _, err := w.api.ActiveRuns(ctx)
	if err != nil {
		if portapi.Permanent(err) {
			w.mu.Lock()
			w.listOff = true
			w.mu.Unlock()
			w.log.Warn("Port refused the list of active runs; asking about long runs one by one from now on", zap.Error(err))
		}
		return nil
	}
	now := time.Now()
	w.mu.Lock()
	for _, r := range w.runs {
		if !r.node && active[r.id] {
			r.checked = now
		}
	}
	w.mu.Unlock()
	return active
}

// stop cancels the command of a run Port ended, if it still runs here.
func (w *portWatch) stop(r *watched, status string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.runs[r.id] != r || r.cancelled {
		return // its command ended meanwhile: its closing finds the run ended
	}
	r.cancelled = true
	r.log.Warn("run "+cancelledInPort+": stopping its command", zap.String("status", status))
	r.cancel(errCancelledInPort)
}

// endCancelled ends a run whose command was stopped because Port ended the run (execute
// counted it as runs_total{result="cancelled_in_port"}, FAILURE in /status, as Port shows
// it): no closing request (Port has its one termination), the log's last lines and the
// summary sent if Port still takes them. The record is finished: Port has the run's end.
func (a *Agent) endCancelled(r *run) {
	defer a.watch.forget(r.msg.ID)
	res := r.ex.res
	ctx, cancel := context.WithTimeout(r.report, a.timings.closingBudget)
	defer cancel()
	sent, err := r.ex.runLog.Abandon(ctx, r.ex.outcome.Summary)
	r.life.to(phaseClosed)
	r.log.Warn("run "+cancelledInPort+": its command was stopped; no closing sent", zap.String("label", res.Label),
		zap.Duration("duration", res.Duration), zap.Bool("last_lines_sent", sent), zap.NamedError("last_lines_error", err))
}

// resultCancelledInPort is runs_total's result of a run Port ended while its command ran.
const resultCancelledInPort = "cancelled_in_port"

// startWatch runs the watch of long runs until the returned stop, which waits for it.
func (a *Agent) startWatch() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { a.watch.run(ctx) })
	return func() { cancel(); wg.Wait() }
}

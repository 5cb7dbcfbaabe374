package agent

import (
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/port-runner/port-runner/internal/runmsg"
	"github.com/port-runner/port-runner/metrics"
)

// keepFinished is how many finished runs /status lists: enough for an on-call to find the
// one a user asks about, little enough to be nothing in memory.
const keepFinished = 20

// finishedRuns is the last runs this replica finished (newest last), guarded by lives.mu.
type finishedRuns struct{ runs []metrics.Finished }

func (f *finishedRuns) add(r metrics.Finished) {
	if len(f.runs) == keepFinished {
		f.runs = slices.Delete(f.runs, 0, 1)
	}
	f.runs = append(f.runs, r)
}

// result records the run's result (the command's, or a failure for a run file refused after
// it), which /status shows once the run is finished.
func (r *runLife) result(success bool, label string) {
	if r == nil {
		return
	}
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	r.success, r.label = success, label
}

// finishedLocked keeps a run that leaves after its command ended (l.mu held); one that
// leaves before it (skipped, handed over, not started) was not finished here.
func (r *runLife) finishedLocked() {
	if r.ph < phaseCommandEnded {
		return
	}
	outcome := metrics.OutcomeNotClosed
	if r.closed {
		outcome = metrics.OutcomeFailure
		if r.success {
			outcome = metrics.OutcomeSuccess
		}
	}
	r.l.finished.add(metrics.Finished{RunID: r.id, Action: r.action, Outcome: outcome, Label: r.label, Ended: time.Now()})
}

// finishedList is the runs this replica finished, each linked to its page in Port's app at
// appURL (none for workflow node runs, whose pages are their workflow run's).
func (l *lives) finishedList(appURL string) []metrics.Finished {
	l.mu.Lock()
	out := slices.Clone(l.finished.runs)
	l.mu.Unlock()
	for i := range out {
		if appURL != "" && !strings.HasPrefix(out[i].RunID, runmsg.WorkflowNodeRunPrefix) {
			out[i].PortURL = appURL + "/organization/run?runId=" + url.QueryEscape(out[i].RunID)
		}
	}
	return out
}

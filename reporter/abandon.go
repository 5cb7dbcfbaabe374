package reporter

import (
	"context"
	"strings"
)

// Abandon ends the log of a run Port has ended already (a user cancelled it there, its
// workflow was cancelled): it sends no closing request (the run has its one termination),
// only what is left of the log and summary, as plain log requests, if Port still takes
// them. What Port answers a log on an ended run is not documented; a refusal ends it. It
// reports whether Port took the last lines. Close and Abandon are each other's alternative:
// after one, the other sends nothing.
func (l *RunLog) Abandon(ctx context.Context, summary string) (bool, error) {
	l.closeMu.Lock()
	defer l.closeMu.Unlock()
	if l.closed {
		return false, nil
	}
	if err := l.stopSender(ctx); err != nil {
		return false, err
	}
	if err := l.sendFullBatches(ctx); err != nil {
		return false, err
	}
	l.mu.Lock()
	lines := l.lastLinesLocked(summary)
	gone := l.gone
	l.mu.Unlock()
	l.closed = true
	if gone || len(lines) == 0 {
		return false, nil
	}
	// Not deliver: a refusal here is expected, the caller says what became of the lines.
	err := l.api.AppendLog(ctx, l.runID, strings.Join(lines, "\n"))
	return err == nil, err
}

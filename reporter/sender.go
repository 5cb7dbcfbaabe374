package reporter

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/port-runner/port-runner/internal/portapi"
)

// send is the run's sender: it ships full batches at once, partial ones FlushInterval after
// their first line, and patches as they come. Each request takes its batch or patch when
// Port's budget gives it its turn, so while it waits lines pile into it and patches merge.
// It stops when Close asks, leaving what is left to the closing request, or when ctx ends.
func (l *RunLog) send(ctx context.Context) {
	defer close(l.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		if ctx.Err() != nil {
			return // what is left stays for Close
		}
		l.mu.Lock()
		if l.gone || l.closing {
			l.mu.Unlock()
			return
		}
		patch := l.cmds.patched
		due, pending, wait := l.batch.due(time.Now(), l.opts.FlushInterval)
		l.mu.Unlock()

		if patch || due {
			if patch {
				deliverTaken(ctx, l, "patch run", l.takePatch, func(take func() (portapi.RunPatch, bool)) error {
					_, err := l.api.PatchRunFrom(ctx, l.runID, l.ending, take)
					return err
				})
			}
			if due {
				deliverTaken(ctx, l, "send log batch", l.takeDue, func(take func() (string, bool)) error {
					_, err := l.api.AppendLogFrom(ctx, l.runID, l.ending, take)
					return err
				})
			}
			continue
		}
		if pending {
			timer.Reset(wait)
		}
		select {
		case <-l.kick:
		case <-timer.C:
		case <-ctx.Done():
			return
		}
		timer.Stop()
	}
}

// deliverTaken delivers one request that takes its content (take) when its turn comes. If the
// request failed before taking anything (no token, say), what it would have taken is
// dropped as a failed request's content is, so the sender does not retry it at once
// forever; if ctx ended, it stays for Close.
func deliverTaken[T any](ctx context.Context, l *RunLog, what string, take func() (T, bool), send func(func() (T, bool)) error) {
	taken := false
	err := l.deliver(what, func() error {
		return send(func() (T, bool) {
			v, ok := take()
			taken = ok
			return v, ok
		})
	})
	if err != nil && !taken && ctx.Err() == nil {
		take()
	}
}

// takePatch gives the sender's PATCH when its turn comes: every workflow command so far.
// Once the run is closing, what is left goes with the closing instead.
func (l *RunLog) takePatch() (portapi.RunPatch, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing || l.gone {
		return portapi.RunPatch{}, false
	}
	return l.cmds.take()
}

// takeDue gives the sender's log batch when its turn comes: the oldest lines up to
// MaxBatchBytes, however many came while it waited.
func (l *RunLog) takeDue() (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gone || l.closing || len(l.batch.lines) == 0 {
		return "", false
	}
	return l.batch.take(time.Now()), true
}

// deliver runs one request. The client retries what can be retried until ctx ends; what
// comes back is permanent, and a run Port says is closed gets nothing more.
func (l *RunLog) deliver(what string, do func() error) error {
	err := do()
	if err == nil {
		return nil
	}
	if portapi.IsRunClosed(err) {
		l.mu.Lock()
		l.gone = true
		l.mu.Unlock()
	}
	l.log.get().Warn(what+" failed; dropped", zap.Error(err))
	if portapi.MaybeRunEnded(err) {
		l.opts.OnRefused(l.runID, err)
	}
	return err
}

package reporter

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/port-runner/port-runner/internal/portapi"
)

// Outcome is how a run ended, for its closing request.
type Outcome struct {
	Success bool
	Label   string // statusLabel: why it ended (the command's own ::port-status-label:: wins on success)
	Summary string // a last log line, e.g. "exit code 0 after 1.2s"
	// Output is what the command left in $PORT_OUTPUT_FILE (masked here); its
	// ::port-output:: lines go on top. Only workflow node runs carry an output.
	Output map[string]any
}

// final is what Close sends: computed once, so a retried Close sends the same request.
type final struct {
	patch   portapi.RunPatch
	patched bool
	closing portapi.Closing
}

// Close sends what is left and the closing request, once. It returns when Port has the
// termination (or says the run was already terminated), or with ctx's error; after an
// error it may be called again, and after success it sends nothing more.
func (l *RunLog) Close(ctx context.Context, o Outcome) error {
	l.closeMu.Lock()
	defer l.closeMu.Unlock()
	if l.closed {
		return nil
	}
	if err := l.stopSender(ctx); err != nil {
		return err
	}
	if err := l.sendFullBatches(ctx); err != nil {
		return err
	}

	l.mu.Lock()
	if !l.finMade {
		l.fin, l.finMade = l.finalLocked(o), true
	}
	fin, gone := &l.fin, l.gone // fin is read and changed under closeMu only
	l.mu.Unlock()

	if gone {
		l.closed = true
		return nil
	}
	if fin.patched {
		if l.deliver("patch run", func() error { return l.api.PatchRun(ctx, l.runID, fin.patch) }) == nil {
			fin.patched = false
		}
	}
	already, err := l.api.CloseRun(ctx, l.runID, fin.closing)
	if err != nil {
		return fmt.Errorf("close run %s: %w", l.runID, err)
	}
	l.closed = true
	if already {
		l.log.get().Info("run was already terminated in Port")
	}
	return nil
}

// stopSender ends the log (the unfinished line becomes the last one) and waits for the
// sender to stop; a request of its still waiting for its turn gives up.
func (l *RunLog) stopSender(ctx context.Context) error {
	l.mu.Lock()
	started := l.done != nil // and stays as it is: once closing, nothing starts the sender
	if !l.closing {
		l.closing = true // first: the unfinished line stays for the closing request, and starts no sender
		if l.split.pending() {
			l.split.flush()
		}
		if started {
			close(l.ending)
		}
	}
	if started {
		l.wakeLocked()
	}
	l.mu.Unlock()
	if !started {
		return nil
	}
	select {
	case <-l.done:
	case <-ctx.Done():
		l.cancel() // the sender gives up its request; it returns at once
		<-l.done
		return fmt.Errorf("close run %s: %w", l.runID, ctx.Err())
	}
	l.cancel()
	return nil
}

// sendFullBatches sends full batches before the closing request, so that it stays under
// Port's limit. The sender leaves less than a batch, unless it stopped early (its ctx ended).
func (l *RunLog) sendFullBatches(ctx context.Context) error {
	for {
		l.mu.Lock()
		if l.gone || l.finMade || !l.batch.full() {
			l.mu.Unlock()
			return nil
		}
		batch := l.batch.take(time.Now())
		l.mu.Unlock()
		if err := l.deliver("send log batch", func() error { return l.api.AppendLog(ctx, l.runID, batch) }); err != nil && ctx.Err() != nil {
			return fmt.Errorf("close run %s: %w", l.runID, err)
		}
	}
}

// finalLocked builds the closing request from what is left; l.mu is held.
func (l *RunLog) finalLocked(o Outcome) final {
	// Patches not yet sent go now, except a label the closing request carries anyway.
	var fin final
	fin.patch, fin.patched = l.cmds.takeForClosing()

	lines := l.lastLinesLocked(o.Summary)
	// The command's own label wins on success; on failure the reason wins, if there is one.
	label := l.mask.value(o.Label)
	if l.cmds.label != "" && (o.Success || label == "") {
		label = l.cmds.label
	}
	status := portapi.StatusFailure
	if o.Success {
		status = portapi.StatusSuccess
	}
	message := strings.Join(lines, "\n")
	if message == "" {
		message = status // Port requires a message; a quiet run still gets one line
	}
	fin.closing = portapi.Closing{Message: message, TerminationStatus: status, StatusLabel: label}
	if len(o.Output) > 0 || len(l.cmds.outputs) > 0 {
		out, _ := l.mask.json(o.Output).(map[string]any)
		if out == nil {
			out = map[string]any{}
		}
		for k, v := range l.cmds.outputs {
			out[k] = v
		}
		fin.closing.Output = out
	}
	return fin
}

// lastLinesLocked takes the lines no request has taken, then the note of output dropped past
// MaxBytesPerRun and the summary, if any: the end of the run's log. l.mu is held.
func (l *RunLog) lastLinesLocked(summary string) []string {
	lines := l.batch.rest()
	if l.batch.dropped > 0 {
		lines = append(lines, fmt.Sprintf("port-runner: %d bytes of output dropped past logs.maxBytesPerRun (%d bytes)", l.batch.dropped, l.opts.MaxBytesPerRun))
	}
	if summary != "" {
		lines = append(lines, l.mask.value(summary))
	}
	return lines
}

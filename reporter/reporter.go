// Package reporter turns a run's output into Port log requests: lines in order, masked,
// batched by size and interval, workflow commands coalesced into PATCHes, and exactly one
// closing request that carries the last batch with the run's terminationStatus.
package reporter

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/port-runner/port-runner/portapi"
)

// API is the part of Port's API a run's log needs.
type API interface {
	AppendLog(ctx context.Context, runID, message string) error
	CloseRun(ctx context.Context, runID string, cl portapi.Closing) (alreadyClosed bool, err error)
	PatchRun(ctx context.Context, runID string, p portapi.RunPatch) error
}

// Options shape every run's log.
type Options struct {
	FlushInterval  time.Duration // a batch leaves this long after its first line at the latest
	MaxBatchBytes  int           // a batch leaves once its JSON-encoded message reaches this
	MaxBytesPerRun int           // output past this is dropped with one notice line
	Mask           []string      // values masked in every run's log
	Logger         *zap.Logger
	OnLogBytes     func(n int) // bytes accepted into a run's log (metrics)
	OnDropped      func(n int) // bytes dropped past MaxBytesPerRun (metrics)
}

// maxLineBytes bounds a line without a newline: past it the line is cut, so a command
// printing megabytes without "\n" cannot grow the agent's memory.
const maxLineBytes = 64 << 10

// Reporter starts run logs that share one API client and one set of options.
type Reporter struct {
	api  API
	opts Options
}

func New(api API, opts Options) *Reporter {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.OnLogBytes == nil {
		opts.OnLogBytes = func(int) {}
	}
	if opts.OnDropped == nil {
		opts.OnDropped = func(int) {}
	}
	if opts.MaxBatchBytes <= 0 {
		opts.MaxBatchBytes = 64 << 10
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = time.Second
	}
	if opts.MaxBytesPerRun <= 0 {
		opts.MaxBytesPerRun = 4 << 20
	}
	return &Reporter{api: api, opts: opts}
}

// Start opens the log of one run. secrets are masked in addition to Options.Mask. The
// returned RunLog sends batches in the background until Close; ctx bounds that sending.
func (r *Reporter) Start(ctx context.Context, runID string, secrets []string) *RunLog {
	l := &RunLog{
		api:    r.api,
		opts:   r.opts,
		runID:  runID,
		log:    r.opts.Logger.With(zap.String("run_id", runID)),
		kick:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		masked: map[string]bool{},
	}
	l.addMasks(r.opts.Mask...)
	l.addMasks(secrets...)
	go l.send(ctx)
	return l
}

// RunLog is one run's log. Write never waits for Port: output that Port cannot take fast
// enough queues up to MaxBytesPerRun and is dropped past it, so a slow Port never slows a command.
type RunLog struct {
	api   API
	opts  Options
	runID string
	log   *zap.Logger
	kick  chan struct{} // wakes the sender: a first line, a full batch, a patch, or Close
	done  chan struct{} // closed when the sender has stopped

	mu        sync.Mutex
	partial   []byte   // an unfinished line
	lines     []string // masked lines not yet sent
	linesSize int      // JSON-encoded size of lines, separators included
	firstAt   time.Time
	accepted  int // bytes taken into the log
	dropped   int // bytes dropped past MaxBytesPerRun
	masker    *strings.Replacer
	masks     []string
	masked    map[string]bool
	patch     portapi.RunPatch
	patched   bool // patch holds something not yet sent
	label     string
	closing   bool
	gone      bool // Port says the run is over: nothing more can be sent for it
}

// Write takes output bytes as the command produced them.
func (l *RunLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := indexByte(p, '\n')
		if i < 0 {
			room := maxLineBytes - len(l.partial)
			if len(p) < room {
				l.partial = append(l.partial, p...)
				break
			}
			l.partial = append(l.partial, p[:room]...)
			p = p[room:]
		} else {
			l.partial = append(l.partial, p[:i]...)
			p = p[i+1:]
		}
		l.takeLine(string(l.partial))
		l.partial = l.partial[:0]
	}
	return n, nil
}

func indexByte(p []byte, c byte) int {
	for i, b := range p {
		if b == c {
			return i
		}
	}
	return -1
}

// takeLine handles one complete line; l.mu is held.
func (l *RunLog) takeLine(line string) {
	line = strings.TrimSuffix(line, "\r")
	if l.workflowCommand(line) {
		return
	}
	line = l.masker.Replace(line)
	if l.accepted+len(line)+1 > l.opts.MaxBytesPerRun {
		l.dropped += len(line) + 1
		l.opts.OnDropped(len(line) + 1)
		return
	}
	l.accepted += len(line) + 1
	l.opts.OnLogBytes(len(line) + 1)
	if len(l.lines) == 0 {
		l.firstAt = time.Now()
		l.wake()
	}
	l.lines = append(l.lines, line)
	l.linesSize += jsonLen(line) + 2 // + the escaped "\n" separator
	if l.linesSize >= l.opts.MaxBatchBytes {
		l.wake()
	}
}

// workflowCommand applies a ::port-...:: line and reports whether it was one.
func (l *RunLog) workflowCommand(line string) bool {
	if !strings.HasPrefix(line, "::") {
		return false
	}
	name, value, ok := strings.Cut(line[2:], "::")
	if !ok {
		return false
	}
	switch name {
	case "add-mask":
		l.addMasks(value)
		return true
	case "port-status-label":
		v := l.masker.Replace(value)
		l.label = v
		l.patch.StatusLabel = &v
	case "port-link":
		l.patch.Link = append(l.patch.Link, l.masker.Replace(value))
	case "port-summary":
		v := l.masker.Replace(value)
		l.patch.Summary = &v
	case "port-external-run-id":
		v := l.masker.Replace(value)
		l.patch.ExternalRunID = &v
	default:
		return false
	}
	l.patched = true
	l.wake()
	return true
}

// addMasks adds values to mask, longest first so a secret containing another is masked whole.
func (l *RunLog) addMasks(values ...string) {
	for _, v := range values {
		if v == "" || l.masked[v] {
			continue
		}
		l.masked[v] = true
		l.masks = append(l.masks, v)
	}
	sort.Slice(l.masks, func(i, j int) bool { return len(l.masks[i]) > len(l.masks[j]) })
	pairs := make([]string, 0, 2*len(l.masks))
	for _, m := range l.masks {
		pairs = append(pairs, m, "***")
	}
	l.masker = strings.NewReplacer(pairs...)
}

func (l *RunLog) wake() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// send is the run's sender: it ships full batches at once, partial ones FlushInterval after
// their first line, and patches as they come; it stops when Close asks, leaving the last
// batch (at most MaxBatchBytes) for the closing request.
func (l *RunLog) send(ctx context.Context) {
	defer close(l.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		l.mu.Lock()
		if l.gone {
			l.mu.Unlock()
			return
		}
		var patch *portapi.RunPatch
		if l.patched && !l.closing {
			p := l.patch
			patch, l.patch, l.patched = &p, portapi.RunPatch{}, false
		}
		var batch string
		due := len(l.lines) > 0 && (l.linesSize >= l.opts.MaxBatchBytes || (!l.closing && time.Since(l.firstAt) >= l.opts.FlushInterval))
		if due {
			batch = l.takeBatch()
		}
		closing := l.closing
		wait := l.opts.FlushInterval - time.Since(l.firstAt)
		pending := len(l.lines) > 0
		l.mu.Unlock()

		if patch != nil {
			l.deliver(ctx, "patch run", func() error { return l.api.PatchRun(ctx, l.runID, *patch) })
			continue
		}
		if due {
			l.deliver(ctx, "send log batch", func() error { return l.api.AppendLog(ctx, l.runID, batch) })
			continue
		}
		if closing {
			return
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

// takeBatch removes the oldest lines up to MaxBatchBytes (encoded); l.mu is held.
func (l *RunLog) takeBatch() string {
	size, n := 0, 0
	for n < len(l.lines) {
		s := jsonLen(l.lines[n]) + 2
		if n > 0 && size+s > l.opts.MaxBatchBytes {
			break
		}
		size += s
		n++
	}
	batch := strings.Join(l.lines[:n], "\n")
	l.lines = l.lines[n:]
	l.linesSize -= size
	if len(l.lines) > 0 {
		l.firstAt = time.Now()
	}
	return batch
}

// deliver runs one request. The client retries what can be retried until ctx ends; what
// comes back is permanent, and a conflict means Port closed the run: stop sending for it.
func (l *RunLog) deliver(ctx context.Context, what string, do func() error) {
	err := do()
	if err == nil {
		return
	}
	var apiErr *portapi.APIError
	if errors.As(err, &apiErr) && apiErr.StatusCode == 409 {
		l.mu.Lock()
		l.gone = true
		l.mu.Unlock()
	}
	l.log.Warn(what+" failed; dropped", zap.Error(err))
}

// Outcome is how a run ended, for its closing request.
type Outcome struct {
	Success bool
	Label   string // statusLabel: why it ended (the command's own ::port-status-label:: wins on success)
	Summary string // a last log line, e.g. "exit code 0 after 1.2s"
}

// Close sends what is left and the closing request, once. It returns when Port has the
// termination (or says the run was already terminated), or with ctx's error.
func (l *RunLog) Close(ctx context.Context, o Outcome) error {
	l.mu.Lock()
	if len(l.partial) > 0 {
		l.takeLine(string(l.partial))
		l.partial = nil
	}
	l.closing = true
	l.mu.Unlock()
	l.wake()
	<-l.done

	l.mu.Lock()
	// The sender left at most one batch; patches not yet sent go now, except a label the
	// closing request carries anyway.
	patch, patched := l.patch, l.patched
	patch.StatusLabel = nil
	patched = patched && (patch.Link != nil || patch.Summary != nil || patch.ExternalRunID != nil)
	lines := l.lines
	l.lines = nil
	if l.dropped > 0 {
		lines = append(lines, fmt.Sprintf("port-runner: %d bytes of output dropped past logs.maxBytesPerRun (%d bytes)", l.dropped, l.opts.MaxBytesPerRun))
	}
	if o.Summary != "" {
		lines = append(lines, o.Summary)
	}
	label := o.Label
	if o.Success && l.label != "" {
		label = l.label
	}
	gone := l.gone
	l.mu.Unlock()

	if gone {
		return nil
	}
	if patched {
		l.deliver(ctx, "patch run", func() error { return l.api.PatchRun(ctx, l.runID, patch) })
	}
	status := "FAILURE"
	if o.Success {
		status = "SUCCESS"
	}
	message := strings.Join(lines, "\n")
	if message == "" {
		message = status // Port requires a message; a quiet run still gets one line
	}
	already, err := l.api.CloseRun(ctx, l.runID, portapi.Closing{Message: message, TerminationStatus: status, StatusLabel: label})
	if err != nil {
		return fmt.Errorf("close run %s: %w", l.runID, err)
	}
	if already {
		l.log.Info("run was already terminated in Port")
	}
	return nil
}

// jsonLen is the length of s inside a JSON string, so batches are bounded by what is sent.
func jsonLen(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f':
			n += 2
		case c < 0x20:
			n += 6
		default:
			n++
		}
	}
	return n
}

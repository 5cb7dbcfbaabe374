// Package reporter turns a run's output into Port log requests: lines in order, masked,
// batched by size and interval, workflow commands coalesced into PATCHes, and exactly one
// closing request that carries the last batch with the run's terminationStatus.
package reporter

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/port-runner/port-runner/portapi"
)

// API is the part of Port's API a run's log needs.
type API interface {
	AppendLog(ctx context.Context, runID, message string) error
	CloseRun(ctx context.Context, runID string, cl portapi.Closing) (alreadyClosed bool, err error)
	PatchRun(ctx context.Context, runID string, p portapi.RunPatch) error
	// AppendLogFrom and PatchRunFrom take what they send when Port's budget gives the
	// request its turn (see portapi), so what waits keeps growing or coalescing; closing
	// abandon while waiting sends nothing.
	AppendLogFrom(ctx context.Context, runID string, abandon <-chan struct{}, take func() (string, bool)) (bool, error)
	PatchRunFrom(ctx context.Context, runID string, abandon <-chan struct{}, take func() (portapi.RunPatch, bool)) (bool, error)
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
	// OnLine sees each line taken into a run's log, masked as Port gets it (the agent's
	// /status shows the last ones). It is called with the log's lock held: it must be quick.
	OnLine func(runID, line string)
}

// maxLineBytes bounds a line without a newline: past it the line is cut, so a command
// printing megabytes without "\n" cannot grow the agent's memory.
const maxLineBytes = 64 << 10

const (
	// maxRequestBytes is Port's request body limit.
	maxRequestBytes = 1 << 20
	// maxBatchCap bounds MaxBatchBytes so that a batch plus what the closing request adds
	// (envelope, dropped notice, summary, label: see maxValueBytes) stays under maxRequestBytes.
	// A single line over MaxBatchBytes travels alone; it is at most maxLineBytes, which
	// JSON-escapes (or masks) to at most 6*maxLineBytes.
	maxBatchCap = maxRequestBytes - 64<<10
	// maxValueBytes bounds a workflow command's value and the Outcome's label and summary.
	maxValueBytes = 4 << 10
	// maxLinks bounds the links a run can set, so the PATCH stays well under 1 MiB.
	maxLinks = 32
)

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
	if opts.OnLine == nil {
		opts.OnLine = func(string, string) {}
	}
	if opts.MaxBatchBytes <= 0 {
		opts.MaxBatchBytes = 64 << 10
	}
	opts.MaxBatchBytes = min(opts.MaxBatchBytes, maxBatchCap)
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
// Close must be called, or ctx ended, for the background sender to stop.
// fields are added to every log line the run's log writes (the agent adds the action).
func (r *Reporter) Start(ctx context.Context, runID string, secrets []string, fields ...zap.Field) *RunLog {
	return r.StartOn(ctx, r.api, runID, secrets, fields...)
}

// StartOn is Start with another Port target for this run: a workflow node run reports
// through portapi.NodeRuns, an action run through the Reporter's own API.
func (r *Reporter) StartOn(ctx context.Context, api API, runID string, secrets []string, fields ...zap.Field) *RunLog {
	ctx, cancel := context.WithCancel(ctx)
	l := &RunLog{
		cancel: cancel,
		api:    api,
		opts:   r.opts,
		runID:  runID,
		log:    r.opts.Logger.With(append([]zap.Field{zap.String("run_id", runID)}, fields...)...),
		kick:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		ending: make(chan struct{}),
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
	api    API
	opts   Options
	runID  string
	log    *zap.Logger
	kick   chan struct{} // wakes the sender: a first line, a full batch, a patch, or Close
	done   chan struct{} // closed when the sender has stopped
	ending chan struct{} // closed by the first Close: a request still waiting for its turn gives up
	cancel context.CancelFunc

	closeMu sync.Mutex // serializes Close
	fin     *final     // the closing request, computed once by the first Close
	closed  bool       // Port has the termination: later Closes send nothing

	mu        sync.Mutex
	partial   []byte   // an unfinished line
	lines     []string // masked lines not yet sent
	sizes     []int    // JSON-encoded size of each line, its separator included
	linesSize int      // sum of sizes
	firstAt   time.Time
	accepted  int // bytes taken into the log
	dropped   int // bytes dropped past MaxBytesPerRun
	masker    masker
	masks     []string // longest first
	masked    map[string]bool
	patch     portapi.RunPatch
	links     []string // every ::port-link:: of the run: a PATCH replaces the whole list
	patched   bool     // patch holds something not yet sent
	label     string
	closing   bool
	gone      bool              // Port says the run is over: nothing more can be sent for it
	outputs   map[string]string // ::port-output::KEY=VALUE, masked
}

// Write takes output bytes as the command produced them. It never waits for Port.
func (l *RunLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(p)
	if l.closing {
		return n, nil // the run's log is closed; nothing more can reach Port
	}
	for len(p) > 0 {
		// A line without a newline is cut at maxLineBytes, but only once hold+1 more bytes
		// are buffered: a secret across the cut is seen whole (see cutPartial), and a line
		// of exactly maxLineBytes followed by "\n" is not followed by an empty one.
		limit := maxLineBytes + l.hold() + 1
		chunk := p[:min(len(p), limit-len(l.partial))]
		if i := bytes.IndexByte(chunk, '\n'); i >= 0 {
			l.partial = append(l.partial, chunk[:i]...)
			p = p[i+1:]
			l.flushPartial()
			continue
		}
		l.partial = append(l.partial, chunk...)
		p = p[len(chunk):]
		if len(l.partial) >= limit {
			l.cutPartial()
		}
	}
	return n, nil
}

// hold is how many bytes past a cut must be seen to know no secret straddles it; l.mu is held.
func (l *RunLog) hold() int {
	if len(l.masks) == 0 {
		return 0
	}
	return len(l.masks[0]) - 1
}

// flushPartial takes the buffered bytes as a complete line (cut if too long); l.mu is held.
func (l *RunLog) flushPartial() {
	for len(l.partial) > maxLineBytes {
		l.cutPartial()
	}
	l.takeLine(string(l.partial))
	l.partial = l.partial[:0]
}

// cutPartial takes at most maxLineBytes of the buffered bytes as a line, cutting on a rune
// boundary and never inside a secret, and keeps the rest buffered; l.mu is held.
func (l *RunLog) cutPartial() {
	buf := l.partial
	cut := maxLineBytes
	for k := 0; k < utf8.UTFMax-1 && cut > 1 && cut < len(buf) && !utf8.RuneStart(buf[cut]); k++ {
		cut--
	}
	cut = l.safeCut(buf, cut)
	l.takeLine(string(buf[:cut]))
	l.partial = append(l.partial[:0], buf[cut:]...)
}

// safeCut moves cut left to the start of any mask occurrence that would straddle it.
func (l *RunLog) safeCut(buf []byte, cut int) int {
	h := l.hold()
	for h > 0 {
		lo, hi := max(0, cut-h), min(len(buf), cut+h)
		best := -1
		for _, m := range l.masks {
			for off := lo; off < cut; {
				j := bytes.Index(buf[off:hi], []byte(m))
				if j < 0 || off+j >= cut {
					break
				}
				if s := off + j; s+len(m) > cut {
					if best < 0 || s < best {
						best = s
					}
					break
				}
				off += j + 1
			}
		}
		if best <= 0 {
			return cut // nothing straddles (or a secret longer than a line: cut anyway)
		}
		cut = best
	}
	return cut
}

// takeLine handles one complete line; l.mu is held.
func (l *RunLog) takeLine(line string) {
	line = strings.TrimSuffix(line, "\r")
	if l.workflowCommand(line) {
		return
	}
	line = l.masker.Replace(line)
	size := len(line) + 1
	if l.dropped > 0 || l.accepted+size > l.opts.MaxBytesPerRun {
		// Once the budget is spent everything after is dropped, so the log has no holes.
		l.dropped += size
		l.opts.OnDropped(size)
		return
	}
	l.accepted += size
	l.opts.OnLogBytes(size)
	l.opts.OnLine(l.runID, line)
	if len(l.lines) == 0 {
		l.firstAt = time.Now()
		l.wake()
	}
	enc := jsonLen(line) + 2 // + the escaped "\n" separator
	l.lines = append(l.lines, line)
	l.sizes = append(l.sizes, enc)
	l.linesSize += enc
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
		v := l.value(value)
		l.label = v
		l.patch.StatusLabel = &v
	case "port-link":
		v := l.masker.Replace(value)
		if v == "" || len(v) > maxValueBytes || len(l.links) >= maxLinks {
			l.log.Warn("ignoring ::port-link::", zap.Int("bytes", len(v)), zap.Int("links", len(l.links)))
			return true
		}
		l.links = append(l.links, v)
		l.patch.Link = slices.Clone(l.links) // Port replaces the list: send all of them
	case "port-summary":
		v := l.value(value)
		l.patch.Summary = &v
	case "port-external-run-id":
		v := l.value(value)
		l.patch.ExternalRunID = &v
	case "port-output":
		l.output(value)
		return true // the closing request carries outputs; nothing to patch now
	default:
		return false
	}
	l.patched = true
	l.wake()
	return true
}

// maxOutputs bounds the ::port-output:: keys of a run, so its closing request stays small.
const maxOutputs = 64

// output takes one ::port-output::KEY=VALUE; l.mu is held. A later value of a key wins.
func (l *RunLog) output(kv string) {
	k, v, ok := strings.Cut(kv, "=")
	if !ok || k == "" || len(k) > 256 {
		l.log.Warn("ignoring ::port-output:: without KEY=VALUE", zap.Int("bytes", len(kv)))
		return
	}
	if l.outputs == nil {
		l.outputs = map[string]string{}
	}
	k = l.masker.Replace(k)
	if _, seen := l.outputs[k]; !seen && len(l.outputs) >= maxOutputs {
		l.log.Warn("ignoring ::port-output:: past the limit", zap.Int("outputs", maxOutputs))
		return
	}
	l.outputs[k] = l.value(v)
}

// maskValue masks every string inside a JSON value (an output file's, a response's).
func (l *RunLog) maskValue(v any) any {
	switch t := v.(type) {
	case string:
		return l.masker.Replace(t)
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[l.masker.Replace(k)] = l.maskValue(x)
		}
		return m
	case []any:
		a := make([]any, len(t))
		for i, x := range t {
			a[i] = l.maskValue(x)
		}
		return a
	}
	return v
}

// Mask masks every string inside v as the run's log would (the agent uses it for what a
// command writes to Port outside its output: its response and output files, and what it
// sends to its run through the Port API proxy).
func (l *RunLog) Mask(v any) any {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.maskValue(v)
}

// value masks and bounds a text that goes to Port outside the log; l.mu is held.
func (l *RunLog) value(s string) string {
	return truncate(l.masker.Replace(s), maxValueBytes)
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const more = "..."
	s = s[:n-len(more)]
	for len(s) > 0 {
		if r, size := utf8.DecodeLastRuneInString(s); r != utf8.RuneError || size != 1 {
			break
		}
		s = s[:len(s)-1] // the bytes of a rune the cut split
	}
	return s + more
}

// addMasks adds values to mask (longest first: hold() reads the longest). Output is masked
// line by line, so a multi-line value is masked line by line too.
func (l *RunLog) addMasks(values ...string) {
	for _, v := range values {
		for part := range strings.SplitSeq(v, "\n") {
			part = strings.TrimSuffix(part, "\r")
			if part == "" || l.masked[part] {
				continue
			}
			l.masked[part] = true
			l.masks = append(l.masks, part)
		}
	}
	sort.SliceStable(l.masks, func(i, j int) bool { return len(l.masks[i]) > len(l.masks[j]) })
	l.masker = masker{values: l.masks}
}

func (l *RunLog) wake() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

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
		patch := l.patched
		due := len(l.lines) > 0 && (l.linesSize >= l.opts.MaxBatchBytes || time.Since(l.firstAt) >= l.opts.FlushInterval)
		wait := l.opts.FlushInterval - time.Since(l.firstAt)
		pending := len(l.lines) > 0
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
	err := l.deliver(ctx, what, func() error {
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
	if !l.patched || l.closing || l.gone {
		return portapi.RunPatch{}, false
	}
	p := l.patch
	l.patch, l.patched = portapi.RunPatch{}, false
	return p, true
}

// takeDue gives the sender's log batch when its turn comes: the oldest lines up to
// MaxBatchBytes, however many came while it waited.
func (l *RunLog) takeDue() (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gone || l.closing || len(l.lines) == 0 {
		return "", false
	}
	return l.takeBatch(), true
}

// takeBatch removes the oldest lines up to MaxBatchBytes (encoded); l.mu is held.
func (l *RunLog) takeBatch() string {
	size, n := 0, 0
	for n < len(l.lines) {
		s := l.sizes[n]
		if n > 0 && size+s > l.opts.MaxBatchBytes {
			break
		}
		size += s
		n++
	}
	batch := strings.Join(l.lines[:n], "\n")
	clear(l.lines[:n]) // let the sent lines be collected
	l.lines, l.sizes = l.lines[n:], l.sizes[n:]
	l.linesSize -= size
	if len(l.lines) > 0 {
		l.firstAt = time.Now()
	}
	return batch
}

// deliver runs one request. The client retries what can be retried until ctx ends; what
// comes back is permanent, and a run Port says is closed gets nothing more.
func (l *RunLog) deliver(ctx context.Context, what string, do func() error) error {
	err := do()
	if err == nil {
		return nil
	}
	if portapi.IsRunClosed(err) {
		l.mu.Lock()
		l.gone = true
		l.mu.Unlock()
	}
	l.log.Warn(what+" failed; dropped", zap.Error(err))
	return err
}

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
	l.mu.Lock()
	if !l.closing {
		if len(l.partial) > 0 {
			l.flushPartial()
		}
		close(l.ending)
	}
	l.closing = true
	l.mu.Unlock()
	l.wake()
	select {
	case <-l.done:
	case <-ctx.Done():
		l.cancel() // the sender gives up its request; it returns at once
		<-l.done
		return fmt.Errorf("close run %s: %w", l.runID, ctx.Err())
	}
	l.cancel()

	// The sender leaves less than a batch, unless it stopped early (its ctx ended): send
	// full batches first, so the closing request stays under the limit.
	for {
		l.mu.Lock()
		if l.gone || l.fin != nil || l.linesSize < l.opts.MaxBatchBytes {
			l.mu.Unlock()
			break
		}
		batch := l.takeBatch()
		l.mu.Unlock()
		if err := l.deliver(ctx, "send log batch", func() error { return l.api.AppendLog(ctx, l.runID, batch) }); err != nil && ctx.Err() != nil {
			return fmt.Errorf("close run %s: %w", l.runID, err)
		}
	}

	l.mu.Lock()
	if l.fin == nil {
		l.fin = l.finalLocked(o)
	}
	fin, gone := l.fin, l.gone
	l.mu.Unlock()

	if gone {
		l.closed = true
		return nil
	}
	if fin.patched {
		if l.deliver(ctx, "patch run", func() error { return l.api.PatchRun(ctx, l.runID, fin.patch) }) == nil {
			fin.patched = false
		}
	}
	already, err := l.api.CloseRun(ctx, l.runID, fin.closing)
	if err != nil {
		return fmt.Errorf("close run %s: %w", l.runID, err)
	}
	l.closed = true
	if already {
		l.log.Info("run was already terminated in Port")
	}
	return nil
}

// finalLocked builds the closing request from what is left; l.mu is held.
func (l *RunLog) finalLocked(o Outcome) *final {
	// Patches not yet sent go now, except a label the closing request carries anyway.
	fin := &final{patch: l.patch}
	fin.patch.StatusLabel = nil
	fin.patched = l.patched && (fin.patch.Link != nil || fin.patch.Summary != nil || fin.patch.ExternalRunID != nil)
	l.patch, l.patched = portapi.RunPatch{}, false

	lines := l.lines
	l.lines, l.sizes, l.linesSize = nil, nil, 0
	if l.dropped > 0 {
		lines = append(lines, fmt.Sprintf("port-runner: %d bytes of output dropped past logs.maxBytesPerRun (%d bytes)", l.dropped, l.opts.MaxBytesPerRun))
	}
	if o.Summary != "" {
		lines = append(lines, l.value(o.Summary))
	}
	// The command's own label wins on success; on failure the reason wins, if there is one.
	label := l.value(o.Label)
	if l.label != "" && (o.Success || label == "") {
		label = l.label
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
	if len(o.Output) > 0 || len(l.outputs) > 0 {
		out, _ := l.maskValue(o.Output).(map[string]any)
		if out == nil {
			out = map[string]any{}
		}
		for k, v := range l.outputs {
			out[k] = v
		}
		fin.closing.Output = out
	}
	return fin
}

// asciiJSONLen is the encoded length of each ASCII byte inside a JSON string.
var asciiJSONLen = func() (t [utf8.RuneSelf]uint8) {
	for c := range t {
		switch {
		case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f':
			t[c] = 2
		case c < 0x20:
			t[c] = 6 // \u00XX
		default:
			t[c] = 1
		}
	}
	return t
}()

// jsonLen is the length of s inside a JSON string as encoding/json writes it (without HTML
// escaping, as portapi sends), so batches are bounded by what is sent.
func jsonLen(s string) int {
	n := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			n += int(asciiJSONLen[c])
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			n += 6 // an invalid byte becomes \ufffd
		case r == '\u2028' || r == '\u2029':
			n += 6 // always escaped
		default:
			n += size
		}
		i += size
	}
	return n
}

// Package reporter turns a run's output into Port log requests: lines in order, masked,
// batched by size and interval, workflow commands coalesced into PATCHes, and exactly one
// closing request that carries the last batch with the run's terminationStatus.
//
// A run's log is a pipeline of stages, one file each, in the order output flows:
//
//	lines.go     splitter: bytes -> lines (on "\n", or cut at maxLineBytes, never inside a secret)
//	mask.go      masker: secrets -> "***" (and where a line may be cut)
//	commands.go  commands: ::port-...:: lines -> a pending PATCH, label, outputs, masks
//	batch.go     batcher: masked lines -> batches of at most MaxBatchBytes, the run's byte budget
//	sender.go    the background sender: batches and PATCHes when Port's budget gives them a turn
//	close.go     Close: what is left plus the one closing request
//
// RunLog (this file) wires them: the stages are plain values owned by one RunLog under its mu.
package reporter

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/port-runner/port-runner/internal/portapi"
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
	// OnRefused hears of Port refusing a log batch or PATCH of a run in a way that may mean
	// the run has ended there (portapi.MaybeRunEnded): the agent asks Port and, if so, stops
	// the command. Called from the run's sender, without the log's lock.
	OnRefused func(runID string, err error)
}

const (
	// maxRequestBytes is Port's request body limit.
	maxRequestBytes = 1 << 20
	// maxBatchCap bounds MaxBatchBytes so that a batch plus what the closing request adds
	// (envelope, dropped notice, summary, label: see maxValueBytes) stays under maxRequestBytes.
	// A single line over MaxBatchBytes travels alone; it is at most maxLineBytes, which
	// JSON-escapes (or masks) to at most 6*maxLineBytes.
	maxBatchCap = maxRequestBytes - 64<<10
)

// Reporter starts run logs that share one API client and one set of options.
type Reporter struct {
	api  API
	opts Options
	mu   sync.Mutex // guards masks (MaskAlso)
	// masks: what every run's log masks (Options.Mask and MaskAlso's values), as maskParts
	// gives it, worked out once rather than per run.
	masks []string
}

// MaskAlso adds values masked in the log of every run started from now on: a credential
// the agent learns after it started (the Kafka password Port gives it).
func (r *Reporter) MaskAlso(values ...string) {
	parts := maskParts(values...)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.masks = append(slices.Clip(r.masks), parts...)
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
	if opts.OnRefused == nil {
		opts.OnRefused = func(string, error) {}
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
	return &Reporter{api: api, opts: opts, masks: maskParts(opts.Mask...)}
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
	r.mu.Lock()
	masks := r.masks
	r.mu.Unlock()
	opts := r.opts
	l := &RunLog{
		ctx:   ctx,
		api:   api,
		opts:  opts,
		runID: runID,
		batch: batcher{maxBatch: opts.MaxBatchBytes, maxRun: opts.MaxBytesPerRun},
	}
	l.log = runLogger{base: opts.Logger, runID: runID, fields: fields}
	l.split = splitter{guard: &l.mask, emit: l}
	l.cmds = commands{mask: &l.mask, log: &l.log, notice: l}
	// The agent's masks and the run's secrets, one part each as a rule: one allocation.
	l.mask.values = make([]string, 0, len(masks)+len(secrets))
	l.mask.addParts(masks...)
	l.mask.add(secrets...)
	return l
}

// RunLog is one run's log. Write never waits for Port: output that Port cannot take fast
// enough queues up to MaxBytesPerRun and is dropped past it, so a slow Port never slows a command.
type RunLog struct {
	api   API
	opts  Options
	runID string
	log   runLogger

	// The sender starts with the first thing it has to send (wakeLocked): most runs print
	// nothing and cost no goroutine, context or timer. These are set, under mu, when it starts.
	ctx    context.Context    // bounds the sender (Start's ctx)
	kick   chan struct{}      // wakes the sender: a first line, a full batch, a patch, or Close
	done   chan struct{}      // closed when the sender has stopped; nil: it never started
	ending chan struct{}      // closed by the first Close: a request still waiting for its turn gives up
	cancel context.CancelFunc // ends the sender's context

	closeMu sync.Mutex // serializes Close
	fin     final      // the closing request, computed once by the first Close (finMade)
	finMade bool
	closed  bool // Port has the termination: later Closes send nothing

	mu      sync.Mutex // guards the stages and the two flags below
	split   splitter
	mask    masker
	cmds    commands
	batch   batcher
	closing bool // Close has begun: nothing more is taken
	gone    bool // Port says the run is over: nothing more can be sent for it
}

// Write takes output bytes as the command produced them. It never waits for Port.
func (l *RunLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closing { // once closed, nothing more can reach Port
		l.split.write(p)
	}
	return len(p), nil
}

// takeLine runs one complete line through the stages after the splitter; l.mu is held.
func (l *RunLog) takeLine(line string) {
	line = strings.TrimSuffix(line, "\r")
	if handled, patched := l.cmds.apply(line); handled {
		if patched {
			l.wakeLocked()
		}
		return
	}
	l.logLine(line)
}

// logLine masks a line that is not a workflow command and adds it to the log; l.mu is held.
func (l *RunLog) logLine(line string) {
	line = l.mask.Replace(line)
	size := len(line) + 1
	if !l.batch.admit(size) {
		l.opts.OnDropped(size)
		return
	}
	l.opts.OnLogBytes(size)
	l.opts.OnLine(l.runID, line)
	if l.batch.add(line) {
		l.wakeLocked()
	}
}

// Mask masks every string inside v as the run's log would (the agent uses it for what a
// command writes to Port outside its output: its response and output files, and what it
// sends to its run through the Port API proxy).
func (l *RunLog) Mask(v any) any {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mask.json(v)
}

// wakeLocked wakes the sender, starting it the first time, unless Close has begun (what is
// left goes with the closing request then); l.mu is held.
func (l *RunLog) wakeLocked() {
	if l.done == nil { // not started
		if l.closing {
			return
		}
		ctx, cancel := context.WithCancel(l.ctx)
		l.kick, l.done, l.ending, l.cancel = make(chan struct{}, 1), make(chan struct{}), make(chan struct{}), cancel
		go l.send(ctx)
	}
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

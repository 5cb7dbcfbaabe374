// Package runmsg turns a Port action-run message from Kafka into a Run, or
// into a reason to skip it. It does no I/O so the consumer, the validator and
// the emulator can share one notion of what a valid, authentic run is.
package runmsg

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/itchyny/gojq"
)

// Selectors are jq expressions that locate a run's fields in a message.
type Selectors struct{ RunID, Action, Properties, Entity string }

// DefaultSelectors fit Port's v1 run message.
func DefaultSelectors() Selectors {
	return Selectors{
		RunID:      ".context.runId",
		Action:     ".action",
		Properties: ".payload.properties",
		Entity:     ".payload.entity",
	}
}

// DefaultMaxBytes is the size limit when Options.MaxBytes is 0.
const DefaultMaxBytes = 1 << 20

// SelectorTimeout stops a selector that never ends (`def f: f; f`) from
// blocking a partition; real selectors take microseconds. The agent gives an
// action's env expressions the same limit.
const SelectorTimeout = time.Second

// Options configure a Decoder.
type Options struct {
	Selectors       Selectors // zero fields take the defaults
	Secret          string    // Port client secret: HMAC key
	VerifySignature bool
	MaxBytes        int // 0 -> 1 MiB (1<<20); bigger messages are invalid
	// Now is the clock signed timestamps are checked against (nil: time.Now).
	Now func() time.Time
}

// Decoder is safe for concurrent use: the compiled jq codes are read-only, and each
// goroutine decoding takes its own scratch space from the pool.
type Decoder struct {
	runID, action, properties, entity *selector
	actionFallback                    *selector
	secret                            string
	verify                            bool
	maxBytes                          int
	now                               func() time.Time
	scratch                           sync.Pool // of *decodeScratch
	actions                           objectCache
}

// NewDecoder compiles the selectors once; an error names the config key of the
// bad selector, e.g. `message.runId: parse jq ".foo[": ...`.
func NewDecoder(opts Options) (*Decoder, error) {
	def := DefaultSelectors()
	d := &Decoder{secret: opts.Secret, verify: opts.VerifySignature, maxBytes: opts.MaxBytes, now: opts.Now}
	if d.now == nil {
		d.now = time.Now
	}
	if d.maxBytes <= 0 {
		d.maxBytes = DefaultMaxBytes
	}
	if d.verify && d.secret == "" {
		return nil, errors.New("verify signature: no secret (an empty HMAC key proves nothing)")
	}
	for _, s := range []struct {
		name      string
		expr, def string
		dst       **selector
	}{
		{"message.runId", opts.Selectors.RunID, def.RunID, &d.runID},
		{"message.action", opts.Selectors.Action, def.Action, &d.action},
		{"message.properties", opts.Selectors.Properties, def.Properties, &d.properties},
		{"message.entity", opts.Selectors.Entity, def.Entity, &d.entity},
		{"action fallback", ".payload.action.identifier", "", &d.actionFallback},
	} {
		expr := s.expr
		if expr == "" {
			expr = s.def
		}
		sel, err := newSelector(expr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		*s.dst = sel
	}
	return d, nil
}

// CompileSelector lets config validation check a jq expression; the returned
// error describes the problem.
func CompileSelector(expr string) error {
	_, err := compile(expr)
	return err
}

// compile uses gojq's defaults on purpose: no environment (selectors must not
// read the agent's credentials via $ENV), no modules, no input.
func compile(expr string) (*gojq.Code, error) {
	q, err := gojq.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("parse jq %q: %w", expr, err)
	}
	code, err := gojq.Compile(q)
	if err != nil {
		return nil, fmt.Errorf("compile jq %q: %w", expr, err)
	}
	return code, nil
}

// Decode returns the run a message asks for; every error is a *SkipError.
func (d *Decoder) Decode(raw []byte) (Run, error) { return d.decode(raw, d.verify) }

// DecodeClaimed returns the run of one run (node: one node run) of Port's claim-pending
// answer, read as port-agent reads it (FromClaimedRun, FromClaimedNodeRun). Claimed runs
// carry no signature: the authenticated HTTPS answer is what vouches for them, so none is
// checked. Every error is a *SkipError.
func (d *Decoder) DecodeClaimed(raw []byte, node bool) (Run, error) {
	from := FromClaimedRun
	if node {
		from = FromClaimedNodeRun
	}
	msg, err := from(raw)
	if err != nil {
		return Run{}, skip(ReasonInvalid, err)
	}
	return d.decode(msg, false)
}

func (d *Decoder) decode(raw []byte, verify bool) (run Run, err error) {
	// A poison message must never crash the agent: a crash would be retried
	// on restart and block the partition for good.
	defer func() {
		if r := recover(); r != nil {
			run, err = Run{}, skip(ReasonInvalid, fmt.Errorf("decode panicked: %v", r))
		}
	}()
	if len(raw) > d.maxBytes {
		return Run{}, skip(ReasonInvalid, fmt.Errorf("message is %d bytes, over the %d-byte limit", len(raw), d.maxBytes))
	}
	read, err := d.read(raw, verify)
	if err != nil {
		return Run{}, err
	}
	message, doc := read.message, read.doc

	ctx := &deadline{}
	defer ctx.stop()

	// The context holds the values the selectors found, as they found them: a string made
	// a value again would cost an allocation each.
	id, err := d.runIDOf(ctx, doc)
	if err != nil {
		return Run{}, err
	}
	runID := id.(string)
	node := IsWorkflowNodeRun(runID)
	act, err := d.actionOf(ctx, doc)
	if err != nil && !node {
		return Run{}, skip(ReasonInvalid, err)
	}
	action := act.(string)
	props, entity, err := d.inputsOf(ctx, doc, node)
	if err != nil {
		return Run{}, err
	}
	out := Run{
		ID:     runID,
		Action: action,
		Context: map[string]any{
			"runId":      id,
			"action":     act,
			"blueprint":  blueprintOf(doc),
			"entity":     entity,
			"properties": props,
			"trigger":    triggerOf(doc),
			"message":    message,
		},
		SignedAt: read.signed,
		size:     len(raw),
		action:   read.action,
	}
	if node {
		out.Workflow, out.Node, out.NodeURL = nodeOf(doc)
		out.Context["workflow"] = out.Workflow
		out.Context["node"] = out.Node
	}
	return out, nil
}

// runIDOf is the run id the selector finds (a string), checked: it becomes a path segment
// of Port's API.
func (d *Decoder) runIDOf(ctx *deadline, doc any) (any, error) {
	id, err := first(ctx, d.runID, doc)
	if err != nil {
		return nil, skip(ReasonInvalid, fmt.Errorf("no run id: %w", err))
	}
	runID, ok := id.(string)
	if !ok || runID == "" {
		return nil, skip(ReasonInvalid, fmt.Errorf("no run id: selector gave %s", describe(id)))
	}
	if err := CheckID(runID); err != nil {
		// It would become a path segment of Port's API ("..": another route).
		return nil, skip(ReasonInvalid, fmt.Errorf("bad run id: %w", err))
	}
	return id, nil
}

// inputsOf is the run's properties ({} when none) and entity, as the selectors find them.
func (d *Decoder) inputsOf(ctx *deadline, doc any, node bool) (props, entity any, err error) {
	props, err = first(ctx, d.properties, doc)
	if err != nil {
		return nil, nil, skip(ReasonInvalid, fmt.Errorf("properties: %w", err))
	}
	if props == nil && node {
		props = nodeInputs(doc)
	}
	if props == nil {
		props = map[string]any{}
	}
	entity, err = first(ctx, d.entity, doc)
	if err != nil {
		return nil, nil, skip(ReasonInvalid, fmt.Errorf("entity: %w", err))
	}
	return props, entity, nil
}

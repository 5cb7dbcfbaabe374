package runmsg

import (
	"fmt"
	"time"
)

// Run is a decoded run. Context's values share structure (properties also
// sit inside message; the message's action object with other runs of that action), so treat
// it as read-only.
type Run struct {
	ID     string
	Action string // "" for a workflow node run whose message names none
	// Workflow and Node identify a workflow node run's workflow and node, from fields no
	// Port source shows yet ("" when the message does not say); NodeURL is the node's
	// invocation URL, which Port's own agent reads. The agent picks the command by them.
	Workflow, Node, NodeURL string
	Context                 map[string]any // the run context: runId, action, blueprint, entity, properties, trigger, message
	// SignedAt is when Port signed the message; zero when signatures are not verified
	// (an unverified timestamp proves nothing).
	SignedAt time.Time
	// size is the length of the message the run was decoded from, which sizes ContextJSON's
	// buffer; 0 for a Run made otherwise.
	size int
	// action is the message's "action" object as the Decoder's cache holds it, with its
	// bytes in the run file; nil when none came from there.
	action *cachedObject
}

// ContextJSON is what $PORT_RUN_FILE holds: the bytes encoding/json writes for the context
// with HTML escaping off (commands see "<" rather than "\u003c"), written by runmsg's own
// writer (json_write.go) because reflection made it a cost of every run.
func (r Run) ContextJSON() ([]byte, error) {
	// The context holds the message and again its properties, trigger and entity: about half
	// as much again, so that the bytes are written without growing. Those are the message's
	// own maps: written once, copied the second time.
	var shared sharedObjects
	for _, v := range r.Context {
		shared.add(v)
	}
	if r.action != nil {
		shared.addWritten(r.action.value, r.action.enc)
	}
	b, err := appendJSON(make([]byte, 0, max(1024, r.size*3/2+128)), r.Context, encodingJSON, &shared)
	if err != nil {
		return nil, fmt.Errorf("run context: %w", err)
	}
	return b, nil
}

// SkipReason doubles as the messages_total outcome label.
type SkipReason string

const (
	ReasonInvalid      SkipReason = "invalid"       // not JSON, not an object, too big, no run id, no action
	ReasonBadSignature SkipReason = "bad_signature" // unsigned, malformed or wrong signature, when verification is on
	ReasonIgnored      SkipReason = "ignored"       // not a run: a change-log event
)

// SkipError is the only error Decode returns: the message must not run.
type SkipError struct {
	Reason SkipReason
	Err    error
}

func (e *SkipError) Error() string {
	if e.Err == nil {
		return string(e.Reason)
	}
	return string(e.Reason) + ": " + e.Err.Error()
}

func (e *SkipError) Unwrap() error { return e.Err }

func skip(reason SkipReason, err error) *SkipError { return &SkipError{Reason: reason, Err: err} }

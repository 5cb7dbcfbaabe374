package runmsg

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/itchyny/gojq"

	"github.com/port-runner/port-runner/internal/jqerr"
)

// identifier reads a string, or the "identifier" of an object (Port uses both shapes).
func identifier(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	s, _ := Lookup(v, "identifier").(string)
	return s
}

// actionOf is the action's identifier, a string ("" with an error). It prefers the
// selector; Port messages also name the action at .payload.action.identifier, and newer
// ones make .action an object with an identifier.
func (d *Decoder) actionOf(ctx *deadline, doc any) (any, error) {
	v, err := first(ctx, d.action, doc)
	if err == nil {
		if nonEmpty(v) {
			return v, nil
		}
		if id := Lookup(v, "identifier"); nonEmpty(id) {
			return id, nil
		}
	}
	if fb, ferr := first(ctx, d.actionFallback, doc); ferr == nil && nonEmpty(fb) {
		return fb, nil
	}
	if err != nil {
		return "", fmt.Errorf("no action: %w", err)
	}
	return "", fmt.Errorf("no action: selector gave %s and .payload.action.identifier is not a string", describe(v))
}

// nonEmpty reports whether v is a string other than "".
func nonEmpty(v any) bool {
	s, ok := v.(string)
	return ok && s != ""
}

// selector is a compiled jq expression. path holds its fields when it is a plain path
// (.context.runId, as every default selector is): one is read by indexing maps as gojq does,
// without the jq machine and the timer it costs on every message.
type selector struct {
	code *gojq.Code
	path []string // nil: run code
}

// plainPath is a jq path of fields only, as gojq's lexer reads ".name" (tokIndex).
var plainPath = regexp.MustCompile(`^(\.[A-Za-z_][A-Za-z0-9_]*)+$`)

func newSelector(expr string) (*selector, error) {
	code, err := compile(expr)
	if err != nil {
		return nil, err
	}
	s := &selector{code: code}
	if plainPath.MatchString(expr) {
		s.path = strings.Split(expr[1:], ".")
	}
	return s, nil
}

// deadline is the time a message's selectors get together (SelectorTimeout), started by the
// first one that runs jq: plain paths need none.
type deadline struct {
	ctx    context.Context
	cancel context.CancelFunc
}

func (d *deadline) get() context.Context {
	if d.ctx == nil {
		d.ctx, d.cancel = context.WithTimeout(context.Background(), SelectorTimeout)
	}
	return d.ctx
}

func (d *deadline) stop() {
	if d.cancel != nil {
		d.cancel()
	}
}

// first returns the selector's first output; no output means null.
func first(ctx *deadline, s *selector, input any) (any, error) {
	if v, ok := s.index(input); ok {
		return v, nil
	}
	iter := s.code.RunWithContext(ctx.get(), input)
	v, ok := iter.Next()
	if !ok {
		return nil, nil
	}
	if err, ok := v.(error); ok {
		// Never the error's text: gojq quotes the values it failed on (message contents).
		return nil, fmt.Errorf("jq: %s", jqerr.Kind(err))
	}
	return v, nil
}

// index reads a plain path as gojq's .name does: a missing key and null give null. ok is
// false when the selector is no plain path, or a step meets neither an object nor null
// (gojq's error, left to gojq to give).
func (s *selector) index(v any) (_ any, ok bool) {
	if s.path == nil {
		return nil, false
	}
	for _, k := range s.path {
		switch o := v.(type) {
		case nil:
		case map[string]any:
			v = o[k]
		default:
			return nil, false
		}
	}
	return v, true
}

// Lookup follows path through nested objects, of a decoded message (map[string]any) or a
// parsed one (*object); nil when any step is not an object or key.
func Lookup(v any, path ...string) any {
	for _, k := range path {
		switch o := v.(type) {
		case map[string]any:
			v = o[k]
		case *object:
			v, _ = o.get(k)
		default:
			return nil
		}
	}
	return v
}

func describe(v any) string {
	if s, ok := v.(string); ok && s == "" {
		return "an empty string"
	}
	return kindOf(v)
}

// blueprintOf is the run's blueprint: the context's, else the action's (nil: none).
func blueprintOf(doc any) any {
	if v := Lookup(doc, "context", "blueprint"); nonEmpty(v) {
		return v
	}
	if v := Lookup(doc, "payload", "action", "blueprint"); nonEmpty(v) {
		return v
	}
	return nil
}

func triggerOf(doc any) any {
	if m, ok := doc.(map[string]any); ok {
		return m["trigger"]
	}
	return nil
}

package runmsg

import (
	"context"
	"fmt"

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

// actionOf prefers the selector; Port messages also name the action at
// .payload.action.identifier, and newer ones make .action an object with an
// identifier.
func (d *Decoder) actionOf(ctx context.Context, doc any) (string, error) {
	v, err := first(ctx, d.action, doc)
	if err == nil {
		if s, ok := v.(string); ok && s != "" {
			return s, nil
		}
		if s, ok := Lookup(v, "identifier").(string); ok && s != "" {
			return s, nil
		}
	}
	if fb, ferr := first(ctx, d.actionFallback, doc); ferr == nil {
		if s, ok := fb.(string); ok && s != "" {
			return s, nil
		}
	}
	if err != nil {
		return "", fmt.Errorf("no action: %w", err)
	}
	return "", fmt.Errorf("no action: selector gave %s and .payload.action.identifier is not a string", describe(v))
}

// first returns the selector's first output; no output means null.
func first(ctx context.Context, code *gojq.Code, input any) (any, error) {
	iter := code.RunWithContext(ctx, input)
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
	if s, ok := Lookup(doc, "context", "blueprint").(string); ok && s != "" {
		return s
	}
	if s, ok := Lookup(doc, "payload", "action", "blueprint").(string); ok && s != "" {
		return s
	}
	return nil
}

func triggerOf(doc any) any {
	if m, ok := doc.(map[string]any); ok {
		return m["trigger"]
	}
	return nil
}

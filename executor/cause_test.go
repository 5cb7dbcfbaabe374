package executor

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// The labels README quotes come from the causes, wrapped or not, and a
// run cancelled before its command starts gets the same label as one cancelled while it runs.
func TestCauseLabels(t *testing.T) {
	for _, tc := range []struct {
		cause error
		want  string
	}{
		{nil, "cancelled: agent shutting down"},
		{context.Canceled, "cancelled: agent shutting down"},
		{ErrShutdown, "cancelled: agent shutting down"},
		{fmt.Errorf("stop: %w", ErrShutdown), "cancelled: stop: agent shutting down"},
		{errors.New("run withdrawn"), "cancelled: run withdrawn"},
	} {
		if got := CancelLabel(tc.cause); got != tc.want {
			t.Errorf("CancelLabel(%v) = %q, want %q", tc.cause, got, tc.want)
		}
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(tc.cause)
		if res, _ := run(t, ctx, Spec{Argv: []string{"true"}}); res.Label != tc.want {
			t.Errorf("cancelled with %v before start: label %q, want %q", tc.cause, res.Label, tc.want)
		}
	}
	if InterruptedLabel != "interrupted: the agent running it stopped" {
		t.Errorf("InterruptedLabel = %q", InterruptedLabel)
	}
}

package executor

import (
	"context"
	"errors"
	"strings"
	"time"
)

// Why a run's command is cancelled: the cause of its context (context.Cause), which becomes
// its statusLabel "cancelled: " + the cause's text (README "Delivery" quotes the labels).
// Whoever cancels defines its cause: the consumer's when the run's partition goes to
// another member (consumer.ErrNotOwned), this one when the agent stops.
//
// ErrShutdown: the agent is stopping ("cancelled: agent shutting down"). A context
// cancelled without a cause reads the same.
var ErrShutdown = errors.New("agent shutting down")

// InterruptedLabel is how Port shows a run whose agent died under it (README "Delivery"):
// the next owner closes it so, or reruns it (onInterrupted).
const InterruptedLabel = "interrupted: the agent running it stopped"

// CancelLabel turns a context cause into a statusLabel. A plain cancel is what the agent
// does on shutdown; any other cause explains itself.
func CancelLabel(cause error) string {
	if cause == nil || cause == context.Canceled {
		cause = ErrShutdown
	}
	return "cancelled: " + cause.Error()
}

// humanDuration formats d like time.Duration.String without the noise of
// zero trailing units: 10m0s -> 10m, 1h0m0s -> 1h, 1m30s and 500ms unchanged.
func humanDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") || strings.HasSuffix(s, "h0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

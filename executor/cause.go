package executor

import (
	"context"
	"errors"
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

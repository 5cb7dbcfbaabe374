package executor

import (
	"context"
	"errors"
)

// Why a run's command is cancelled: the cause of its context (context.Cause), which becomes
// its statusLabel "cancelled: " + the cause's text. They are defined once, here, because
// SPEC and README quote the labels; compare with errors.Is.
var (
	// ErrShutdown: the agent is stopping ("cancelled: agent shutting down"). A context
	// cancelled without a cause reads the same.
	ErrShutdown = errors.New("agent shutting down")
	// ErrPartitionReassigned: a rebalance gave the run's partition to another member
	// ("cancelled: partition reassigned to another agent").
	ErrPartitionReassigned = errors.New("partition reassigned to another agent")
)

// InterruptedLabel is how Port shows a run whose agent died under it (SPEC "Executing a
// run"): the next owner closes it so, or reruns it (onInterrupted).
const InterruptedLabel = "interrupted: the agent running it stopped"

// CancelLabel turns a context cause into a statusLabel. A plain cancel is what the agent
// does on shutdown; any other cause explains itself.
func CancelLabel(cause error) string {
	if cause == nil || cause == context.Canceled {
		cause = ErrShutdown
	}
	return "cancelled: " + cause.Error()
}

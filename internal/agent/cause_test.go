package agent

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/port-runner/port-runner/consumer"
	"github.com/port-runner/port-runner/executor"
)

// A run the fence stops (its replica could not confirm its membership) is cancelled with
// the consumer's cause, and Port shows the label README "Delivery" quotes, whether it was
// running or not started yet.
func TestFencedRunLabel(t *testing.T) {
	const want = "cancelled: lost contact with the Kafka group"
	if got := executor.CancelLabel(consumer.ErrFenced); got != want {
		t.Errorf("label of a fenced run = %q, want %q", got, want)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(consumer.ErrFenced)
	if res := executor.Run(ctx, executor.Spec{Argv: []string{"true"}}, nil); res.Label != want {
		t.Errorf("label of a run fenced before its start = %q, want %q", res.Label, want)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "`"+want+"`") {
		t.Errorf("README does not quote the label %q", want)
	}
}

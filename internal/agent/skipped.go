package agent

import (
	"github.com/port-runner/port-runner/consumer"
	"github.com/port-runner/port-runner/metrics"
)

// skippedBatch counts the offsets of a batch the consumer skipped because it did not
// decompress within kafka.maxDecompressBatchBytes (the consumer logs it): their runs were
// never read, so they are not executed and stay open in Port (README "Delivery").
func (a *Agent) skippedBatch(b consumer.SkippedBatch) {
	a.metrics.CountMessages(metrics.OutcomeSkippedBatch, float64(b.Next-b.First))
}

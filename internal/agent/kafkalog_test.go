package agent_test

import (
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/test/harness"
)

// PORT_RUNNER_LOG_LEVEL=debug is a debug logger: franz-go's own debug lines (connections,
// fetches, the group's joins) come through it too, not only its warnings. The harness's
// agent logs at debug, as with that setting.
func TestKafkaClientLogsFollowDebugLevel(t *testing.T) {
	h := harness.New(t, 1)
	a := h.Start(t, h.Config(t, `
actions:
  create_microservice: {command: ["echo", "hi"]}
`))
	waitcond.For(t, "a debug line of franz-go's", 30*time.Second, func() bool {
		return a.Logs.Filter(func(e observer.LoggedEntry) bool {
			return e.LoggerName == "kafka" && e.Level == zapcore.DebugLevel
		}).Len() > 0
	})
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
}

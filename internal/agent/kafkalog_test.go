package agent_test

import (
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/port-runner/port-runner/internal/agent"
	"github.com/port-runner/port-runner/internal/waitcond"
)

// PORT_RUNNER_LOG_LEVEL=debug is a debug logger: franz-go's own debug lines (connections,
// fetches, the group's joins) come through it too, not only its warnings.
func TestKafkaClientLogsFollowDebugLevel(t *testing.T) {
	h := newHarness(t, 1)
	core, logs := observer.New(zapcore.DebugLevel)
	_, stop := h.startAgentWith(t, h.config(t, `
  create_microservice: {command: ["echo", "hi"]}
`), func(d *agent.Deps) { d.Logger = zap.New(core) })
	waitcond.For(t, "a debug line of franz-go's", 30*time.Second, func() bool {
		return logs.Filter(func(e observer.LoggedEntry) bool {
			return e.LoggerName == "kafka" && e.Level == zapcore.DebugLevel
		}).Len() > 0
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

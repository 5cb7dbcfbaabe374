package agent_test

import (
	"strings"
	"testing"

	"github.com/port-runner/port-runner/test/harness"
)

// TestAgentCredentialsAlwaysMasked: the agent's own credentials are masked in every run's
// log, whether or not security.mask lists them. The command here is handed the client secret
// and the Kafka password (a jq string constant) and prints them.
func TestAgentCredentialsAlwaysMasked(t *testing.T) {
	h := harness.New(t, 1)
	cfg := h.Config(t, harness.Actions(`  leak:
    command: ["sh", "-c", "echo \"secret=$S password=$P\""]
    env: {S: '"`+harness.Secret+`"', P: '"kafka-pass-9f8e7d"'}
`))
	cfg.Kafka.SASL.Password = "kafka-pass-9f8e7d" // no mechanism: read and masked, never sent
	h.Start(t, cfg)
	h.NewRun(t, "r_leak", "leak")
	run := h.WaitClosed(t, "r_leak")
	var log strings.Builder
	for _, e := range run.Logs {
		log.WriteString(e.Message + e.StatusLabel)
	}
	if got := log.String(); strings.Contains(got, harness.Secret) || strings.Contains(got, "kafka-pass-9f8e7d") ||
		!strings.Contains(got, "secret=*** password=***") {
		t.Errorf("run log %q: want both credentials masked", got)
	}
}

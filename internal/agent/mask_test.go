package agent_test

import (
	"strings"
	"testing"
)

// TestAgentCredentialsAlwaysMasked: the agent's own credentials are masked in every run's
// log, whether or not security.mask lists them. The command here is handed the client secret
// and the Kafka password (a jq string constant) and prints them.
func TestAgentCredentialsAlwaysMasked(t *testing.T) {
	h := newHarness(t, 1)
	cfg := h.config(t, `  leak:
    command: ["sh", "-c", "echo \"secret=$S password=$P\""]
    env: {S: '"`+vectorSecret+`"', P: '"kafka-pass-9f8e7d"'}
`)
	cfg.Kafka.SASL.Password = "kafka-pass-9f8e7d" // no mechanism: read and masked, never sent
	h.start(t, cfg)
	h.emu.RegisterRun("r_leak", "leak")
	h.produceRun(t, "r_leak", "leak")
	run := waitTerminated(t, h.emu, "r_leak")
	var log strings.Builder
	for _, e := range run.Logs {
		log.WriteString(e.Message + e.StatusLabel)
	}
	if got := log.String(); strings.Contains(got, vectorSecret) || strings.Contains(got, "kafka-pass-9f8e7d") ||
		!strings.Contains(got, "secret=*** password=***") {
		t.Errorf("run log %q: want both credentials masked", got)
	}
}

package config

import (
	"strings"
	"testing"

	"github.com/port-runner/port-runner/internal/runmsg"
)

const pollingYAML = `
transport: polling
port:
  clientID: cid
  clientSecret: csecret
actions:
  deploy:
    command: ["/bin/true"]
`

func okPath(string) (string, error) { return "/bin/true", nil }

// transport: polling needs no kafka: section at all (no brokers, topic, group or orgID).
func TestPollingNeedsNoKafka(t *testing.T) {
	c := mustParse(t, pollingYAML, env(nil))
	if !c.Polls() {
		t.Fatalf("transport %q, want polling", c.Transport)
	}
	if err := c.Validate(runmsg.CompileSelector, okPath); err != nil {
		t.Fatalf("a polling config without kafka: %v", err)
	}
	if c.Polling.Interval.D().Seconds() != 10 || c.Polling.VisibilityTimeout.D().Seconds() != 60 || c.Polling.SweepInterval.D().Seconds() != 60 {
		t.Errorf("polling defaults %+v, want interval 10s, visibilityTimeout 60s, sweepInterval 1m", c.Polling)
	}
	// The same file on Kafka asks for what Kafka needs.
	k := mustParse(t, strings.Replace(pollingYAML, "transport: polling", "transport: kafka", 1), env(nil))
	if err := k.Validate(runmsg.CompileSelector, okPath); err == nil || !strings.Contains(err.Error(), "kafka.topic") {
		t.Fatalf("kafka without a topic: %v, want a kafka.topic problem", err)
	}
}

func TestPollingBounds(t *testing.T) {
	for _, tc := range []struct{ extra, key string }{
		{"transport: carrier-pigeon", "transport"},
		{"polling: {interval: 500ms}", "polling.interval"},
		{"polling: {interval: 6m}", "polling.interval"},
		{"polling: {visibilityTimeout: 999ms}", "polling.visibilityTimeout"},
		{"polling: {visibilityTimeout: 11m}", "polling.visibilityTimeout"},
		{"polling: {sweepInterval: 2h}", "polling.sweepInterval"},
	} {
		yml := pollingYAML + tc.extra + "\n"
		if strings.HasPrefix(tc.extra, "transport:") {
			yml = strings.Replace(pollingYAML, "transport: polling", tc.extra, 1)
		}
		c := mustParse(t, yml, env(nil))
		if err := c.Validate(runmsg.CompileSelector, okPath); err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s: %v, want a %s problem", tc.extra, err, tc.key)
		}
	}
}

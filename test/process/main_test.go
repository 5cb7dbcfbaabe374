//go:build linux

package process_test

import (
	"os"
	"testing"

	"github.com/port-runner/port-runner/test/harness"
)

// TestMain removes the agent harness.Binary built once the tests have run.
func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

// plaintextBroker is the test's broker, harness.NewBroker's; the test is skipped on a
// SASL_SSL one: the agent processes here get a config file and nothing else.
func plaintextBroker(t *testing.T) *harness.Broker {
	t.Helper()
	broker := harness.NewBroker(t)
	if len(broker.Opts) > 0 {
		t.Skip("the agent here is configured for a PLAINTEXT broker")
	}
	return broker
}

package process_test

import (
	"os"
	"testing"

	"github.com/port-runner/port-runner/test/harness"
)

// TestMain removes the agent harness.Binary built once the tests have run.
func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

package executor

import (
	"testing"

	"github.com/port-runner/port-runner/internal/sizetest"
)

// TestSize keeps the package's files and functions small.
func TestSize(t *testing.T) {
	sizetest.Check(t, ".", sizetest.Limits{File: 300, Func: 80})
}

//go:build unix && !linux

package executor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAClosedGateHoldsAShimlessPlatformsCommand: outside Linux there is no shim (startProcess
// forks the command itself, whatever Spec.Shim says), so the gate must pass before that fork
// even when Spec.Shim is set: a gate that fails leaves the command never started.
func TestAClosedGateHoldsAShimlessPlatformsCommand(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "ran")
	res, out := run(t, context.Background(), Spec{
		Argv: []string{"sh", "-c", `: > "$1"`, "sh", marker},
		Shim: []string{"/nonexistent/port-runner-shim"},
		Gate: func() error { return errors.New("the take failed") },
	})
	if _, err := os.Stat(marker); err == nil || !strings.HasPrefix(res.Label, "not started: ") {
		t.Errorf("%+v (%q): marker there: %v; want the command never started", res, out, err == nil)
	}
}

package consumer

import (
	"os/exec"
	"strings"
	"testing"
)

// The consumer feeds the executor and never reaches back (README "Development"): it owns
// the "partition no longer ours" error, and the stages after it quote it.
func TestNoLaterStageDependency(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list dependencies with")
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for dep := range strings.FieldsSeq(string(out)) {
		for _, later := range []string{"/executor", "/reporter", "/internal/agent"} {
			if strings.HasSuffix(dep, "/port-runner"+later) {
				t.Errorf("consumer depends on %s", dep)
			}
		}
	}
}

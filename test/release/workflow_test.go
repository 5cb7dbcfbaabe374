package release

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// lintError is one finding of `actionlint -format '{{json .}}'`.
type lintError struct {
	Message string `json:"message"`
	Line    int    `json:"line"`
	Kind    string `json:"kind"`
}

// actionlint runs the pinned actionlint (PORT_RUNNER_ACTIONLINT, set by scripts/test) on
// files, with shellcheck on PATH, since without it actionlint skips every run: script quietly.
func actionlint(t *testing.T, files ...string) []lintError {
	t.Helper()
	bin := os.Getenv("PORT_RUNNER_ACTIONLINT")
	if bin == "" {
		t.Skip("PORT_RUNNER_ACTIONLINT unset: scripts/test sets it to the actionlint scripts/tool pins")
	}
	if _, err := exec.LookPath("shellcheck"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI: shellcheck is required: without it actionlint does not check the workflow's scripts (.ci/run installs Debian's shellcheck)")
		}
		t.Skip("no shellcheck on PATH: actionlint would not check the workflow's scripts; install Debian's shellcheck")
	}
	out, err := exec.Command(bin, append([]string{"-format", "{{json .}}"}, files...)...).Output()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
		err = nil // 1: lint errors, in out
	}
	if err != nil {
		t.Fatalf("actionlint %v: %v", files, err)
	}
	var errs []lintError
	if err := json.Unmarshal(out, &errs); err != nil {
		t.Fatalf("actionlint's output: %v\n%s", err, out)
	}
	return errs
}

// The workflows pass actionlint, shellcheck of their scripts included.
func TestWorkflowsLint(t *testing.T) {
	files, err := filepath.Glob("../../.github/workflows/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no workflow in .github/workflows: %v", err)
	}
	for _, e := range actionlint(t, files...) {
		t.Errorf("actionlint: line %d: [%s] %s", e.Line, e.Kind, e.Message)
	}
}

// The lint sees what it is there for: the release workflow with a step id misspelt in an
// expression and a variable left unquoted in a script fails it, with both reported.
func TestWorkflowLintCatchesMistakes(t *testing.T) {
	b, err := os.ReadFile("../../.github/workflows/release.yaml")
	if err != nil {
		t.Fatal(err)
	}
	broken := string(b)
	for old, mistake := range map[string]string{
		"${{ steps.image.outputs.digest }}":      "${{ steps.imgae.outputs.digest }}",
		`cosign sign --yes "${IMAGE}@${DIGEST}"`: `cosign sign --yes ${IMAGE}@${DIGEST}`,
	} {
		if !strings.Contains(broken, old) {
			t.Fatalf("release.yaml no longer has %q: give this test another mistake to make", old)
		}
		broken = strings.Replace(broken, old, mistake, 1)
	}
	path := filepath.Join(t.TempDir(), ".github", "workflows", "release.yaml")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, e := range actionlint(t, path) {
		kinds[e.Kind] = true
	}
	for _, want := range []string{"expression", "shellcheck"} {
		if !kinds[want] {
			t.Errorf("actionlint found no %s error in the broken workflow (found %v)", want, kinds)
		}
	}
}

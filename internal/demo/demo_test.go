package demo

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/port-runner/port-runner/internal/agent"
	"github.com/port-runner/port-runner/internal/shim/shimtest"
)

// TestDemo runs `port-runner demo` in-process: five runs, each printed with its status; as
// `port-runner demo` runs them where it can (under the C shim, sandboxed), and with neither.
func TestDemo(t *testing.T) {
	t.Run("plain", func(t *testing.T) { testDemo(t, agent.Deps{}) })
	t.Run("shim and sandbox", func(t *testing.T) {
		if runtime.GOOS != "linux" {
			t.Skip("the exec shim is Linux-only")
		}
		path, _, err := shimtest.BuildC(t.TempDir())
		if err != nil {
			if shimtest.Required() {
				t.Fatal(err)
			}
			t.Skipf("not checked: %v", err)
		}
		testDemo(t, agent.Deps{Shim: []string{path}, ShimKind: "C"})
	})
}

func testDemo(t *testing.T, commands agent.Deps) {
	var out, logs bytes.Buffer
	if err := Run(context.Background(), commands, &out, &logs); err != nil {
		t.Fatalf("demo: %v\n%s\n%s", err, out.String(), logs.String())
	}
	got := out.String()
	for _, want := range []string{
		"create_microservice (CREATE)", "Status: SUCCESS · Created my-microservice",
		"Creating microservice my-microservice in eu-west-1",
		"deploy_microservice (DAY-2 on my-microservice)", "Summary: my-microservice is live in production",
		"Status: FAILURE · exit code 3", "error: unknown environment 'moon'",
		"rotate_db_password (CREATE)", "new password: ***", "Status: SUCCESS · Password of billing rotated",
		"workflow release, node build-image (workflow node run)", "Status: COMPLETED · SUCCESS",
		`Output: {"digest":"sha256:4f1c0a9e","image":"registry.example.com/billing:1.4.2","sizeBytes":50331648}`,
		"All 5 runs ended as expected.",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("demo output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got+logs.String(), demoSecretInput) {
		t.Errorf("the secret input shows in the demo's output or logs:\n%s", got)
	}
	if strings.Contains(got, "::port-") {
		t.Errorf("workflow commands leaked into the printed log:\n%s", got)
	}
}

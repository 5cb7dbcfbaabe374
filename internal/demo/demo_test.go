package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestDemo runs `port-runner demo` in-process: five runs, each printed with its status.
func TestDemo(t *testing.T) {
	var out, logs bytes.Buffer
	if err := Run(context.Background(), &out, &logs); err != nil {
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

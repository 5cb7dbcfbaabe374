package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestDemo runs `port-runner demo` in-process: three runs, each printed with its status.
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
		"All 3 runs ended as expected.",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("demo output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "::port-") {
		t.Errorf("workflow commands leaked into the printed log:\n%s", got)
	}
}

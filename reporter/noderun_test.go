package reporter

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/portapi"
)

// A workflow node run reports through portapi.NodeRuns: the same batching and masking, its
// ::port-output:: lines on top of the output file's values, one completion with the output.
func TestNodeRunOutputs(t *testing.T) {
	prod := func(context.Context, string, []byte, []byte) error { return nil }
	e := emulator.New(emulator.Options{ClientID: clientID, ClientSecret: clientSecret, OrgID: "org_test", Produce: prod})
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	base := srv.URL
	api, err := portapi.New(portapi.Options{BaseURL: base, ClientID: clientID, ClientSecret: clientSecret})
	if err != nil {
		t.Fatal(err)
	}
	nr, err := e.CreateNodeRun(context.Background(), "ci", "build", emulator.CreateNodeRunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	rep := New(api, Options{FlushInterval: time.Hour})
	rl := rep.StartOn(context.Background(), portapi.NodeRuns{C: api}, nr.ID, []string{"s3cr3t"})
	write(t, rl, "building s3cr3t\n::port-output::image=registry/api:v1\n::port-output::token=s3cr3t\n")
	write(t, rl, "::port-output::tag=v1\n::port-output::broken\n::port-status-label::ignored for nodes\n")
	closeRun(t, rl, Outcome{Success: true, Label: "exit code 0", Summary: "port-runner: exit code 0",
		Output: map[string]any{"tag": "from-file", "digest": "sha256:abc", "nested": map[string]any{"k": "s3cr3t"}}})

	s, _ := e.Run(nr.ID)
	if s.Status != "SUCCESS" || s.Result != "SUCCESS" || s.Terminations != 1 || s.RejectedTerminations != 0 {
		t.Fatalf("node run %+v", s)
	}
	want := map[string]any{"image": "registry/api:v1", "token": "***", "tag": "v1", "digest": "sha256:abc"}
	for k, w := range want {
		if s.Output[k] != w {
			t.Errorf("output[%s] = %v, want %v (output %v)", k, s.Output[k], w, s.Output)
		}
	}
	if s.Output["nested"].(map[string]any)["k"] != "***" {
		t.Errorf("output file values not masked: %v", s.Output)
	}
	equalLines(t, logLines(s), []string{"building ***", "port-runner: exit code 0"})
	for _, l := range s.Logs {
		if l.Level != "INFO" {
			t.Errorf("log level %q", l.Level)
		}
	}
}

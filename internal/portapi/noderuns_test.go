package portapi_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/portapi"
)

func emulated(t *testing.T, opts emulator.Options) (*emulator.Emulator, *portapi.Client) {
	t.Helper()
	opts.ClientID, opts.ClientSecret = "c", "portapi-test-secret-0123456789abcdef"
	opts.Produce = func(context.Context, string, []byte, []byte) error { return nil }
	e := emulator.New(opts)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	base := srv.URL
	c, err := portapi.New(portapi.Options{BaseURL: base, ClientID: opts.ClientID, ClientSecret: opts.ClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	return e, c
}

// A node run closed twice (a redelivery, a lost answer) counts as closed the second time,
// and GetRun reads a completed node run as terminated.
func TestNodeRunsCloseOnce(t *testing.T) {
	e, c := emulated(t, emulator.Options{})
	nr, err := e.CreateNodeRun(context.Background(), "w", "n", emulator.CreateNodeRunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	n := portapi.NodeRuns{C: c}
	ctx := context.Background()
	if r, err := n.GetRun(ctx, nr.ID); err != nil || r.Terminated() {
		t.Fatalf("open node run: %+v %v", r, err)
	}
	cl := portapi.Closing{Message: "a\nb", TerminationStatus: portapi.StatusFailure, Output: map[string]any{"k": "v"}}
	if already, err := n.CloseRun(ctx, nr.ID, cl); err != nil || already {
		t.Fatalf("first close: %v %v", already, err)
	}
	if already, err := n.CloseRun(ctx, nr.ID, cl); err != nil || !already {
		t.Fatalf("second close: already=%v err=%v", already, err)
	}
	s, _ := e.Run(nr.ID)
	if s.Result != "FAILED" || s.Output["k"] != "v" || len(s.Logs) != 2 || s.Logs[1].Message != "b" || s.Terminations != 1 {
		t.Fatalf("node run %+v", s)
	}
	if r, err := n.GetRun(ctx, nr.ID); err != nil || r.Status != portapi.StatusFailure {
		t.Fatalf("completed node run: %+v %v", r, err)
	}
	// An action-run id is no node run.
	if _, err := n.GetRun(ctx, "r_nope"); !portapi.Permanent(err) {
		t.Fatalf("unknown node run: %v", err)
	}
}

func TestKafkaCredentialsAndResponse(t *testing.T) {
	e, c := emulated(t, emulator.Options{KafkaCredentials: &emulator.KafkaCredentials{Brokers: []string{"b:9196"}, Username: "u", Password: "pw-77"}})
	cr, err := c.KafkaCredentials(context.Background())
	if err != nil || cr.Username != "u" || cr.Password != "pw-77" || cr.Brokers[0] != "b:9196" {
		t.Fatalf("credentials %+v %v", cr, err)
	}
	_, c2 := emulated(t, emulator.Options{})
	if _, err := c2.KafkaCredentials(context.Background()); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("no credentials: %v", err)
	}
	e.RegisterRun("r_sync", "a")
	if err := c.SendResponse(context.Background(), "r_sync", map[string]any{"x": 1}); err != nil {
		t.Fatal(err)
	}
	if s, _ := e.Run("r_sync"); s.Response.(map[string]any)["x"] != float64(1) {
		t.Fatalf("response %v", s.Response)
	}
}

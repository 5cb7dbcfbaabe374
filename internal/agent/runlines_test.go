package agent_test

import (
	"slices"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/test/harness"
)

// A quiet run's two lines name the run and its action first, then their own fields, as a
// logger derived for the run would (they spell those fields out: no logger is derived).
func TestQuietRunLines(t *testing.T) {
	h := harness.New(t, 1)
	cfg := h.Config(t, harness.Actions(`  deploy:
    command: ["/bin/true"]
`))
	h.NewRun(t, "r_quiet", "deploy")
	a := h.Start(t, cfg, harness.TestLogLevel(zapcore.InfoLevel))
	h.WaitClosed(t, "r_quiet")
	want := map[string][]string{
		"run started": {"run_id", "action", "at", "rerun"},
		"run closed":  {"run_id", "action", "result", "label", "duration"},
	}
	waitcond.For(t, "the run's two lines", 30*time.Second, func() bool {
		return a.Logs.FilterMessage("run closed").Len() == 1
	})
	for msg, keys := range want {
		entries := a.Logs.FilterMessage(msg).All()
		if len(entries) != 1 {
			t.Fatalf("%d lines %q, want 1", len(entries), msg)
		}
		var got []string
		for _, f := range entries[0].Context {
			got = append(got, f.Key)
		}
		if !slices.Equal(got, keys) || entries[0].ContextMap()["run_id"] != "r_quiet" || entries[0].ContextMap()["action"] != "deploy" {
			t.Errorf("%q: fields %v (%v), want %v naming r_quiet and deploy", msg, got, entries[0].ContextMap(), keys)
		}
	}
}

package agent_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/port-runner/port-runner/test/harness"
)

// Workflow commands the agent ignores (a ::port-link:: past a run's 32nd, a ::port-output::
// without KEY=VALUE or past its 64 keys) are warned of in the agent's own log once per run
// and kind, not once per line: they stay out of the run's log and its byte budget, so a
// command printing them at full speed would otherwise write to the agent's log (one lock for
// every goroutine that logs) as fast as it can (README "What Port sees").
func TestIgnoredWorkflowCommandsAreWarnedOfOnce(t *testing.T) {
	const lines = 20000
	h := harness.New(t, 1)
	script := harness.Script(t, fmt.Sprintf(`i=0
while [ $i -lt %d ]; do
  echo "::port-link::https://example.invalid/$i"
  echo "::port-output::no-value-$i"
  i=$((i+1))
done
`, lines))
	cfg := h.Config(t, harness.Actions(fmt.Sprintf("  chatty:\n    command: [%q]\n", script)))
	h.Emu.RegisterRun("r_chatty", "chatty")
	a := h.Start(t, cfg)
	h.ProduceRun(t, "r_chatty", "chatty")
	if run := h.WaitClosed(t, "r_chatty"); run.Status != "SUCCESS" {
		t.Fatalf("run %s %q, want SUCCESS", run.Status, run.StatusLabel)
	}
	links := a.Logs.FilterMessageSnippet("ignoring ::port-link::").Len()
	outputs := a.Logs.FilterMessageSnippet("ignoring ::port-output::").Len()
	t.Logf("%d ignored links and %d bad outputs: %d and %d warnings", lines-32, lines, links, outputs)
	if links != 1 || outputs != 1 {
		var sample []string
		for _, e := range a.Logs.FilterMessageSnippet("ignoring").All()[:min(3, links+outputs)] {
			sample = append(sample, e.Message)
		}
		t.Fatalf("%d warnings of ignored links and %d of bad outputs, want one of each: %s", links, outputs, strings.Join(sample, "; "))
	}
}

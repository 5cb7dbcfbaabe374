package reporter

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// A command's ::add-mask:: values are bounded in number and in bytes per run: past either
// bound a value is not added, and the run's log says so once. The agent's own masks
// (security.mask, the run's secrets) are not counted.
func TestCommandMasksBounded(t *testing.T) {
	for _, tc := range []struct {
		name  string
		value func(i int) string
		fits  int // values that fit the bound
	}{
		{"number", func(i int) string { return fmt.Sprintf("m%05d", i) }, maxCommandMasks},
		{"bytes", func(i int) string { return fmt.Sprintf("%05d%s", i, strings.Repeat("x", 1019)) }, maxCommandMaskBytes / 1024},
	} {
		t.Run(tc.name, func(t *testing.T) {
			agentSecrets := make([]string, 2*maxCommandMasks)
			for i := range agentSecrets {
				agentSecrets[i] = fmt.Sprintf("agent-secret-%05d", i)
			}
			api := &recordAPI{}
			rl := New(api, Options{Mask: []string{"cfg-secret"}}).Start(context.Background(), "r_bound", agentSecrets)
			var out strings.Builder
			for i := range tc.fits + 5 {
				fmt.Fprintf(&out, "::add-mask::%s\n", tc.value(i))
			}
			last, over := tc.value(tc.fits-1), tc.value(tc.fits)
			fmt.Fprintf(&out, "last in: %s\nfirst out: %s\nagent: %s cfg-secret\n", last, over, agentSecrets[len(agentSecrets)-1])
			write(t, rl, out.String())
			closeRun(t, rl, Outcome{Success: true})
			sent := api.all()
			if strings.Contains(sent, last) || !strings.Contains(sent, "last in: ***\n") {
				t.Errorf("the last value within the bound is not masked:\n%.2000s", sent)
			}
			if !strings.Contains(sent, "first out: "+over+"\n") {
				t.Errorf("the first value past the bound was added:\n%.2000s", sent)
			}
			if !strings.Contains(sent, "agent: *** ***\n") {
				t.Errorf("the agent's own masks counted against the command's bound:\n%.2000s", sent)
			}
			if n := strings.Count(sent, "port-runner: ::add-mask::"); n != 1 {
				t.Errorf("%d warning lines about the bound, want 1:\n%.2000s", n, sent)
			}
		})
	}
}

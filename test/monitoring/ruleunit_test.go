package monitoring

import (
	"path/filepath"
	"slices"
	"testing"

	"log/slog"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
)

const ruleTestsFile = "testdata/port-runner.rules.test.yaml"

// Every alert rule, evaluated on sample series the way `promtool test rules` does: each
// fires where it should (with its labels and annotations) and stays quiet where it should not.
func TestAlertRulesUnitTests(t *testing.T) {
	f := readRuleTests(t, ruleTestsFile)
	for _, tg := range f.Tests {
		t.Run(tg.Name, func(t *testing.T) {
			for _, p := range runRuleTest(t, f, tg) {
				t.Error(p)
			}
		})
	}
}

// The unit tests cover every alert of the rules file both ways: firing and not firing.
func TestEveryAlertHasUnitTests(t *testing.T) {
	f := readRuleTests(t, ruleTestsFile)
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tg := range f.Tests {
		for _, a := range tg.AlertRuleTests {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	groups, errs := rulefmt.ParseFile(filepath.Join(repoRoot, rulesFile), false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var alerts []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				alerts = append(alerts, r.Alert)
			}
		}
	}
	for _, a := range alerts {
		if !fires[a] || !quiet[a] {
			t.Errorf("%s: unit tests where it fires: %v, where it does not: %v; want both in %s", a, fires[a], quiet[a], ruleTestsFile)
		}
	}
	for a := range fires {
		if !slices.Contains(alerts, a) {
			t.Errorf("%s has unit tests but no rule", a)
		}
	}
}

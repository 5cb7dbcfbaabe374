package charts_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/releaseutil"
)

var update = flag.Bool("update", false, "rewrite files/alerts/port-runner.rules.yaml from the chart's default alert values")

// rulesHeader opens the generated rules file.
const rulesHeader = `# Prometheus alerting rules for port-runner (rules-file ` + "`groups:`" + ` format, what promtool checks).
# Generated: the chart's templates/_alerts.tpl with its default values, for a release
# port-runner in namespace port-runner (cd charts && go test -run TestRulesFile -update).
# The chart renders the same rules as a PrometheusRule with thresholds, for, labels and
# runbook URLs from values (prometheusRule.rules); docker compose's Prometheus loads this
# file, and test/monitoring/testdata/port-runner.rules.test.yaml tests every rule in it
# (promtool test rules). Each alert's runbook is its section in README.md ("Alerts").
`

// The rules file is what the chart's alert templates render with their defaults, so the
// rules docker compose loads and test/monitoring evaluates are the ones the chart installs.
func TestRulesFile(t *testing.T) {
	path := filepath.Join(chartDir, "files", "alerts", "port-runner.rules.yaml")
	want := rulesHeader + renderedRules(t, values(t, minimal, "prometheusRule: {enabled: true}"))
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s is not what the chart renders with its defaults: run `go test -run TestRulesFile -update` in charts/\n--- rendered ---\n%s", path, want)
	}
}

// renderedRules is the PrometheusRule's spec as the template writes it, for a release
// port-runner in namespace port-runner (the names docker compose's Prometheus gives the
// agents' series).
func renderedRules(t *testing.T, vals map[string]any) string {
	t.Helper()
	manifest, _, err := template(t, chartDir, "port-runner", "port-runner", vals)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	for _, doc := range releaseutil.SplitManifests(manifest) {
		if !strings.Contains(doc, "\nkind: PrometheusRule\n") {
			continue
		}
		_, spec, ok := strings.Cut(doc, "\nspec:\n")
		if !ok {
			t.Fatalf("PrometheusRule without a spec:\n%s", doc)
		}
		var out []string
		for _, line := range strings.Split(spec, "\n") {
			out = append(out, strings.TrimPrefix(line, "  "))
		}
		return strings.TrimRight(strings.Join(out, "\n"), "\n") + "\n"
	}
	t.Fatal("no PrometheusRule rendered")
	return ""
}

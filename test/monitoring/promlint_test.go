package monitoring

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// `promtool check metrics` (its library, promlint) finds nothing to say about a real scrape
// of the agent after real runs: names, units, suffixes, help texts, its own and franz-go's.
func TestScrapeLint(t *testing.T) {
	exported(t)
	problems, err := promlint.New(strings.NewReader(scraped)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	for _, want := range []string{"port_runner_runs_total", "port_runner_kafka_buffered_fetch_records", "port_runner_port_budget_remaining"} {
		if !strings.Contains(scraped, "\n"+want) {
			t.Errorf("the scrape lacks %s", want)
		}
	}
}

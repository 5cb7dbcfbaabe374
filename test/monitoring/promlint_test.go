package monitoring

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/port-runner/port-runner/metrics"
)

// scrape reads /metrics through the agent's own handler, as Prometheus does.
func scrape(m *metrics.Metrics, ready func() error) (string, error) {
	srv := httptest.NewServer(m.Handler(ready))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("/metrics: %s", resp.Status)
	}
	return string(b), err
}

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

package harness

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/port-runner/port-runner/metrics"
)

// Families are metric families by name, as a scrape or a registry's Gather gives them.
type Families map[string]*dto.MetricFamily

// Scrape GETs url/metrics and parses it as Prometheus does.
func Scrape(t testing.TB, url string) Families {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(ScrapeText(t, url)))
	if err != nil {
		t.Fatalf("harness: parse /metrics: %v", err)
	}
	return fams
}

// ScrapeText GETs url/metrics as Prometheus does and returns the exposition text as served
// (for linting it, as promtool does).
func ScrapeText(t testing.TB, url string) string {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatalf("harness: scrape: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("harness: scrape %s/metrics: %s %v", url, resp.Status, err)
	}
	return string(b)
}

// Gather is what m's registry gathers, without HTTP.
func Gather(t testing.TB, m *metrics.Metrics) Families {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatalf("harness: gather: %v", err)
	}
	out := Families{}
	for _, f := range mfs {
		out[f.GetName()] = f
	}
	return out
}

// Status GETs url/status.
func Status(t testing.TB, url string) metrics.Status {
	t.Helper()
	resp, err := http.Get(url + "/status")
	if err != nil {
		t.Fatalf("harness: /status: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var st metrics.Status
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("harness: /status: %v: %s", err, b)
	}
	return st
}

// Series are the samples of the family name whose labels include want.
func (f Families) Series(name string, want map[string]string) []*dto.Metric {
	var out []*dto.Metric
	for _, m := range f[name].GetMetric() {
		if HasLabels(m, want) {
			out = append(out, m)
		}
	}
	return out
}

// Sum adds up Series(name, want); ok is false when there is none.
func (f Families) Sum(name string, want map[string]string) (total float64, ok bool) {
	ms := f.Series(name, want)
	for _, m := range ms {
		total += Value(m)
	}
	return total, len(ms) > 0
}

// HasLabels reports whether m has every label of want with its value.
func HasLabels(m *dto.Metric, want map[string]string) bool {
	got := map[string]string{}
	for _, l := range m.Label {
		got[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// Value is a sample's value; a histogram's is its count of observations.
func Value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

// Labels is a label set from name, value pairs.
func Labels(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// Scrape is Scrape of the agent's own metrics server.
func (a *Agent) Scrape(t testing.TB) Families {
	t.Helper()
	return Scrape(t, a.MetricsURL(t))
}

// Status is Status of the agent's own metrics server.
func (a *Agent) Status(t testing.TB) metrics.Status {
	t.Helper()
	return Status(t, a.MetricsURL(t))
}

package metrics

import (
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// lint is `promtool check metrics` on what the registry gathers.
func lint(t *testing.T, m *Metrics) []promlint.Problem {
	t.Helper()
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(fams).Lint()
	if err != nil {
		t.Fatal(err)
	}
	return problems
}

// Before Port has said anything about the budget there is no figure: the gauge is absent,
// not a 0 that reads as "budget spent".
func TestBudgetRemainingAbsentUntilKnown(t *testing.T) {
	m := New()
	if got := gathered(t, m, "port_runner_port_budget_remaining"); got != "" {
		t.Fatalf("port_budget_remaining before any answer from Port: %s", got)
	}
	m.ObservePortBudget(0)
	m.ObservePortBudget(42)
	if got := gathered(t, m, "port_runner_port_budget_remaining"); got != "42" {
		t.Fatalf("port_budget_remaining after Port said 42: %q", got)
	}
	if p := lint(t, m); len(p) > 0 {
		t.Errorf("promlint: %v", p)
	}
}

// A collector's series come out under the new names, with their labels and values; the
// others pass through as they are.
func TestRenamed(t *testing.T) {
	m := New()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "x_buffered_records_total", Help: "Records buffered."}, []string{"node"})
	g.WithLabelValues("1").Set(7)
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x_reads_total", Help: "Reads."})
	c.Add(3)
	m.Attach("x", Renamed(collectorList{g, c}, map[string]string{"x_buffered_records_total": "x_buffered_records"}))
	if got := gathered(t, m, "x_buffered_records"); got != `{node="1"} 7` {
		t.Errorf("x_buffered_records = %q", got)
	}
	if got := gathered(t, m, "x_buffered_records_total"); got != "" {
		t.Errorf("the old name is still exported: %q", got)
	}
	if got := gathered(t, m, "x_reads_total"); got != "3" {
		t.Errorf("x_reads_total = %q", got)
	}
	if p := lint(t, m); len(p) > 0 {
		t.Errorf("promlint: %v", p)
	}
}

type collectorList []prometheus.Collector

func (cs collectorList) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range cs {
		c.Describe(ch)
	}
}

func (cs collectorList) Collect(ch chan<- prometheus.Metric) {
	for _, c := range cs {
		c.Collect(ch)
	}
}

// gathered is one family's series as `{labels} value` lines ("" when absent); a series
// without labels is its value alone.
func gathered(t *testing.T, m *Metrics, name string) string {
	t.Helper()
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			var ls []string
			for _, l := range s.GetLabel() {
				ls = append(ls, l.GetName()+`="`+l.GetValue()+`"`)
			}
			v := s.GetGauge().GetValue() + s.GetCounter().GetValue() + s.GetUntyped().GetValue()
			line := strings.TrimSpace(strconvF(v))
			if len(ls) > 0 {
				line = "{" + strings.Join(ls, ",") + "} " + line
			}
			lines = append(lines, line)
		}
	}
	return strings.Join(lines, "\n")
}

func strconvF(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

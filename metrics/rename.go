package metrics

import (
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Renamed is c with the series of the families in names exported under their new names
// (old fully-qualified name -> new one): a library's collector whose names break
// Prometheus' conventions (franz-go's kprom exports two gauges named ..._total, which
// `promtool check metrics` flags) keeps its code and loses the bad names. Other series
// pass through unchanged.
func Renamed(c prometheus.Collector, names map[string]string) prometheus.Collector {
	return renamed{c: c, names: names}
}

type renamed struct {
	c     prometheus.Collector
	names map[string]string
}

// Describe describes nothing: like the attached collectors it sits among, it is unchecked.
func (renamed) Describe(chan<- *prometheus.Desc) {}

func (r renamed) Collect(out chan<- prometheus.Metric) {
	in := make(chan prometheus.Metric)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(in)
		r.c.Collect(in)
	})
	for m := range in {
		out <- r.rename(m)
	}
	wg.Wait()
}

// rename re-creates a gauge or counter of a renamed family under its new name, with its
// labels (constant ones included) and value.
func (r renamed) rename(m prometheus.Metric) prometheus.Metric {
	name, help, ok := nameAndHelp(m.Desc())
	to, renamedFamily := r.names[name]
	if !ok || !renamedFamily {
		return m
	}
	var pb dto.Metric
	if err := m.Write(&pb); err != nil {
		return m
	}
	var keys, values []string
	for _, l := range pb.GetLabel() {
		keys, values = append(keys, l.GetName()), append(values, l.GetValue())
	}
	desc := prometheus.NewDesc(to, help, keys, nil)
	switch {
	case pb.Gauge != nil:
		return prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, pb.GetGauge().GetValue(), values...)
	case pb.Counter != nil:
		return prometheus.MustNewConstMetric(desc, prometheus.CounterValue, pb.GetCounter().GetValue(), values...)
	}
	return m
}

// nameAndHelp reads a Desc's name and help from its String form, the only place a Desc
// shows them: `Desc{fqName: "...", help: "...", ...}`.
func nameAndHelp(d *prometheus.Desc) (name, help string, ok bool) {
	s, found := strings.CutPrefix(d.String(), `Desc{fqName: `)
	if !found {
		return "", "", false
	}
	q, err := strconv.QuotedPrefix(s)
	if err != nil {
		return "", "", false
	}
	name, _ = strconv.Unquote(q)
	s, found = strings.CutPrefix(s[len(q):], `, help: `)
	if !found {
		return name, "", true
	}
	if q, err = strconv.QuotedPrefix(s); err == nil {
		help, _ = strconv.Unquote(q)
	}
	return name, help, true
}

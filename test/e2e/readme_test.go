package e2e_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/port-runner/port-runner/test/harness"
)

// readmeMetrics is README's metrics table: each metric it names (without the port_runner_
// prefix; a trailing * covers a family of names, such as kafka_*) with the label names it
// gives, nil where it gives none.
func readmeMetrics(t *testing.T) map[string][]string {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	start := strings.Index(text, "Metrics, prefix `port_runner_`")
	if start < 0 {
		t.Fatal("README has no metrics table (\"Metrics, prefix `port_runner_`\")")
	}
	out := map[string][]string{}
	name := regexp.MustCompile("`([a-z_]+\\*?)(?:\\{([^`]*)\\})?`")
	rows := 0
	for line := range strings.Lines(text[start:]) {
		if rows > 0 && !strings.HasPrefix(line, "|") {
			break // the table's end
		}
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		rows++
		first, _, _ := strings.Cut(strings.TrimPrefix(line, "| "), " | ")
		for _, m := range name.FindAllStringSubmatch(first, -1) {
			var labels []string
			for l := range strings.SplitSeq(m[2], ",") {
				if l, _, _ := strings.Cut(l, "="); l != "" {
					labels = append(labels, strings.TrimSpace(l))
				}
			}
			out[m[1]] = labels
		}
	}
	if rows == 0 {
		t.Fatal("README's metrics table has no rows")
	}
	return out
}

// checkReadmeMetrics: every port_runner_ family /metrics has is in README's table (exactly
// or by a name*), with the label names the table gives; every name the table gives exactly
// is on /metrics. fams is a scrape after runs, so the families that only show once
// something happened are there.
func checkReadmeMetrics(t *testing.T, fams harness.Families) {
	t.Helper()
	doc := readmeMetrics(t)
	documented := func(name string) (labels []string, exact, ok bool) {
		if ls, ok := doc[name]; ok {
			return ls, true, true
		}
		for d := range doc {
			if p, ok := strings.CutSuffix(d, "*"); ok && strings.HasPrefix(name, p) {
				return nil, false, true
			}
		}
		return nil, false, false
	}
	for full, f := range fams {
		name, ok := strings.CutPrefix(full, "port_runner_")
		if !ok {
			continue
		}
		want, exact, ok := documented(name)
		if !ok {
			t.Errorf("README's metrics table lacks %s (on /metrics)", full)
			continue
		}
		if !exact {
			continue // a name* row
		}
		for _, m := range f.Metric {
			var got []string
			for _, l := range m.Label {
				if l.GetName() != "le" && l.GetName() != "quantile" {
					got = append(got, l.GetName())
				}
			}
			slices.Sort(got)
			w := slices.Sorted(slices.Values(want))
			if !slices.Equal(got, w) {
				t.Errorf("README gives %s the labels %v; /metrics has %v", full, w, got)
				break
			}
		}
	}
	for d := range doc {
		if strings.HasSuffix(d, "*") {
			continue
		}
		full := "port_runner_" + d
		if strings.HasPrefix(d, "go_") || strings.HasPrefix(d, "process_") {
			full = d
		}
		if fams[full] == nil {
			t.Errorf("README's metrics table lists %s, which /metrics does not have", full)
		}
	}
}

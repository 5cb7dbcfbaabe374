package monitoring

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/rules"
	"go.yaml.in/yaml/v3"
)

// ruleTestFile is promtool's rule unit-test format (`promtool test rules FILE`), the part of
// it these tests use; unknown keys are errors, so the file stays one promtool reads.
type ruleTestFile struct {
	RuleFiles          []string       `yaml:"rule_files"`
	EvaluationInterval model.Duration `yaml:"evaluation_interval"`
	Tests              []ruleTest     `yaml:"tests"`
}

type ruleTest struct {
	Name        string `yaml:"name"`
	Interval    model.Duration
	InputSeries []struct {
		Series string `yaml:"series"`
		Values string `yaml:"values"`
	} `yaml:"input_series"`
	AlertRuleTests []alertTest `yaml:"alert_rule_test"`
}

type alertTest struct {
	EvalTime  model.Duration `yaml:"eval_time"`
	Alertname string         `yaml:"alertname"`
	ExpAlerts []struct {
		ExpLabels      map[string]string `yaml:"exp_labels"`
		ExpAnnotations map[string]string `yaml:"exp_annotations"`
	} `yaml:"exp_alerts"`
}

func readRuleTests(t *testing.T, path string) ruleTestFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var f ruleTestFile
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if f.EvaluationInterval == 0 {
		f.EvaluationInterval = model.Duration(time.Minute)
	}
	for i := range f.RuleFiles {
		f.RuleFiles[i] = filepath.Join(filepath.Dir(path), f.RuleFiles[i])
	}
	return f
}

// runRuleTest is what `promtool test rules` does for one test group: load the input series,
// evaluate every group of the rule files at each evaluation interval from 0 to the last
// eval_time, and compare the firing alerts (labels and annotations, exactly) at each
// eval_time. It returns the mismatches.
func runRuleTest(t *testing.T, f ruleTestFile, tg ruleTest) []string {
	t.Helper()
	interval := time.Duration(tg.Interval)
	if interval == 0 {
		interval = time.Duration(f.EvaluationInterval)
	}
	var load strings.Builder
	fmt.Fprintf(&load, "load %s\n", model.Duration(interval))
	for _, s := range tg.InputSeries {
		fmt.Fprintf(&load, "  %s %s\n", s.Series, s.Values)
	}
	suite, err := promqltest.NewLazyLoader(load.String(), promqltest.LazyLoaderOpts{EnableAtModifier: true, EnableNegativeOffset: true})
	if err != nil {
		t.Fatalf("%s: input series: %v", tg.Name, err)
	}
	defer suite.Close()
	suite.SubqueryInterval = time.Duration(f.EvaluationInterval)
	m := rules.NewManager(&rules.ManagerOptions{
		QueryFunc: rules.EngineQueryFunc(suite.QueryEngine(), suite.Storage()), AppendableV2: suite.Storage(),
		Context: context.Background(), NotifyFunc: func(context.Context, string, ...*rules.Alert) {}, Logger: promslog.NewNopLogger(),
	})
	groups, errs := m.LoadGroups(interval, labels.EmptyLabels(), "", nil, false, f.RuleFiles...)
	if len(errs) > 0 {
		t.Fatalf("%s: rule files: %v", tg.Name, errs)
	}
	for _, g := range groups {
		for _, r := range g.Rules() {
			if ar, ok := r.(*rules.AlertingRule); ok {
				ar.SetRestored(true) // as promtool: no "for" state to restore
			}
		}
	}
	var last model.Duration
	for _, a := range tg.AlertRuleTests {
		last = max(last, a.EvalTime)
	}
	var problems []string
	start := time.Unix(0, 0).UTC()
	evalEvery := time.Duration(f.EvaluationInterval)
	for ts := start; !ts.After(start.Add(time.Duration(last))); ts = ts.Add(evalEvery) {
		suite.WithSamplesTill(ts, func(err error) {
			if err != nil {
				t.Fatalf("%s: samples till %s: %v", tg.Name, ts, err)
			}
			for _, g := range groups {
				g.Eval(suite.Context(), ts)
				for _, r := range g.Rules() {
					if r.LastError() != nil {
						problems = append(problems, fmt.Sprintf("rule %s at %s: %v", r.Name(), ts.Sub(start), r.LastError()))
					}
				}
			}
		})
		for _, a := range tg.AlertRuleTests {
			at := time.Duration(a.EvalTime)
			if ts.Sub(start) <= at && at < ts.Add(evalEvery).Sub(start) {
				problems = append(problems, compareAlerts(tg.Name, a, firing(groups, a.Alertname))...)
			}
		}
	}
	return problems
}

// firing is every firing alert of the rules named name, as sorted "labels annotations" lines.
func firing(groups map[string]*rules.Group, name string) []string {
	var out []string
	for _, g := range groups {
		for _, r := range g.Rules() {
			ar, ok := r.(*rules.AlertingRule)
			if !ok || ar.Name() != name {
				continue
			}
			for _, a := range ar.ActiveAlerts() {
				if a.State == rules.StateFiring {
					out = append(out, a.Labels.String()+" "+a.Annotations.String())
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

func compareAlerts(test string, a alertTest, got []string) []string {
	var want []string
	for _, e := range a.ExpAlerts {
		ls := map[string]string{labels.AlertName: a.Alertname}
		for k, v := range e.ExpLabels {
			ls[k] = v
		}
		want = append(want, labels.FromMap(ls).String()+" "+labels.FromMap(e.ExpAnnotations).String())
	}
	sort.Strings(want)
	if slices.Equal(got, want) {
		return nil
	}
	return []string{fmt.Sprintf("%s: %s at %s:\n  want %q\n  got  %q", test, a.Alertname, a.EvalTime, want, got)}
}

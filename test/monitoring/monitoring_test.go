package monitoring

import (
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/port-runner/port-runner/internal/agent"
	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/test/harness"
)

const (
	repoRoot      = "../.."
	dashboardFile = "charts/port-runner/files/dashboards/port-runner.json"
	rulesFile     = "charts/port-runner/files/alerts/port-runner.rules.yaml"
)

var promql = parser.NewParser(parser.Options{})

var (
	gatherOnce sync.Once
	gathered   registry
	gatherErr  error
	scraped    string // /metrics as Prometheus read it at the same moment
)

// registry is what the agent's registry gathered: each name a query can use (histograms'
// _bucket/_sum/_count included) with the label sets of its series.
type registry map[string][]map[string]string

// exported returns every series the agent's registry gathers after real runs (a success,
// a failure, a run Port refuses to close, a 429 from Port's budget): what a query can name.
// It is computed once per test binary.
func exported(t *testing.T) registry {
	t.Helper()
	gatherOnce.Do(func() {
		gatherErr = errors.New("gathering failed in the first test that asked")
		gathered = runAndGather(t)
		gatherErr = nil
	})
	if gatherErr != nil {
		t.Fatal(gatherErr)
	}
	return gathered
}

func runAndGather(t *testing.T) registry {
	// A budget makes Port send its x-ratelimit headers, so port_budget_remaining is Port's
	// figure, not the gauge's zero; a 1s window, so the 429 below holds requests until the
	// window's reset for at most a second.
	h := harness.New(t, 2, harness.WithPort(func(o *emulator.Options) { o.Budget, o.BudgetWindow = 100000, time.Second }))
	cfg := h.Config(t, `
port: {requestsPerSecond: 500}
executor: {maxConcurrent: 2, shutdownTimeout: 1s}
logs: {flushInterval: 100ms}
actions:
  ok: {command: ["/bin/sh", "-c", "echo fine"]}
  fails: {command: ["/bin/sh", "-c", "echo no; exit 3"]}
`)
	// A short closing budget: the run Port refuses to close lets go of its slot soon after.
	a := h.Start(t, cfg, harness.With(agent.WithLagInterval(200*time.Millisecond), agent.WithClosingBudget(time.Second)))
	// Port's first answer about a run is a 429: the code="429" series the 429 panel and
	// alert select exists.
	h.Emu.FailNext(1, 429)
	h.NewRun(t, "r_ok", "ok")
	h.NewRun(t, "r_fails", "fails")
	h.WaitAllClosed(t, []string{"r_ok", "r_fails"}, time.Minute)
	// Then a run whose closing Port refuses twice (the full request and the minimal
	// fallback): runs_unclosed_total counts it. Alone, so no other run's closing takes the
	// refusals.
	h.Emu.RefuseClosings(422, 422)
	h.NewRun(t, "r_unclosed", "ok")
	// The lag collector and the saturation metrics show once the agent has read the broker.
	var reg registry
	waitcond.For(t, "the agent to export its lag, an unclosed run, Port's budget and a 429", 30*time.Second, func() bool {
		fams := harness.Gather(t, a.Metrics)
		reg = seriesOf(fams)
		unclosed, _ := fams.Sum("port_runner_runs_unclosed_total", nil)
		budget, _ := fams.Sum("port_runner_port_budget_remaining", nil)
		got429, _ := fams.Sum("port_runner_port_requests_total", map[string]string{"code": "429"})
		return len(reg["port_runner_consumer_lag_seconds"]) > 0 && len(reg["port_runner_runs_total"]) > 0 &&
			unclosed == 1 && budget > 0 && got429 > 0 && len(reg["port_runner_port_request_wait_seconds"]) > 0
	})
	// /metrics as Prometheus reads it from the agent's own metrics server, at the same moment.
	scraped = harness.ScrapeText(t, a.MetricsURL(t))
	return reg
}

// seriesOf lists the label sets of every gathered series by the names a query can use.
func seriesOf(fams harness.Families) registry {
	out := registry{}
	for _, f := range fams {
		names := []string{f.GetName()}
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM:
			names = append(names, f.GetName()+"_bucket", f.GetName()+"_sum", f.GetName()+"_count")
		case dto.MetricType_SUMMARY:
			names = append(names, f.GetName()+"_sum", f.GetName()+"_count")
		}
		for _, m := range f.GetMetric() {
			ls := map[string]string{}
			for _, l := range m.GetLabel() {
				ls[l.GetName()] = l.GetValue()
			}
			for _, n := range names {
				out[n] = append(out[n], ls)
			}
		}
	}
	return out
}

// scrapeLabels are the labels Prometheus adds to every series it scrapes: the dashboard's
// and the rules' selectors may use them, the registry never has them.
var scrapeLabels = map[string]bool{labels.MetricName: true, "namespace": true, "job": true, "instance": true}

// matchesSome reports whether the selector's label matchers, but for the scrape's own
// labels, fit at least one gathered series of its metric: a selector such as code="429" or
// result="failure" then selects something real (a label missing from a series is "").
func (r registry) matchesSome(ms []*labels.Matcher) bool {
	for _, ls := range r[metricName(ms)] {
		ok := true
		for _, m := range ms {
			if !scrapeLabels[m.Name] && !m.Matches(ls[m.Name]) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// grafanaVars replaces Grafana's interval variables with durations the parser accepts.
var grafanaVars = strings.NewReplacer("$__rate_interval", "1m", "$__interval", "1m", "$__range", "1h")

// selectors returns every vector selector of a PromQL expression.
func selectors(t *testing.T, expr string) []*parser.VectorSelector {
	t.Helper()
	e, err := promql.ParseExpr(grafanaVars.Replace(expr))
	if err != nil {
		t.Errorf("does not parse: %v\n%s", err, expr)
		return nil
	}
	var out []*parser.VectorSelector
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs)
		}
		return nil
	})
	return out
}

func metricName(ms []*labels.Matcher) string {
	for _, m := range ms {
		if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
			return m.Value
		}
	}
	return ""
}

type dashboard struct {
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type panel struct {
	Title      string `json:"title"`
	Type       string `json:"type"`
	Datasource struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr       string `json:"expr"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, dashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

var labelValues = regexp.MustCompile(`^label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)$`)

// Every dashboard query parses as PromQL, names only metrics the agent exports, and is
// scoped by the namespace, job and instance variables; every panel uses the datasource
// variable; the panels README "Dashboard and alerts" lists are there.
func TestDashboard(t *testing.T) {
	have := exported(t)
	d := readDashboard(t)
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Errorf("variable %s: query %s: %v", v.Name, v.Query, err)
			continue
		}
		m := labelValues.FindStringSubmatch(q.Query)
		if m == nil {
			t.Errorf("variable %s: %q is not label_values(selector, label)", v.Name, q.Query)
			continue
		}
		ms, err := promql.ParseMetricSelector(m[1])
		if err != nil {
			t.Errorf("variable %s: selector %q: %v", v.Name, m[1], err)
			continue
		}
		if n := metricName(ms); len(have[n]) == 0 {
			t.Errorf("variable %s reads %q, which the agent does not export", v.Name, n)
		}
	}
	for name, typ := range map[string]string{"datasource": "datasource", "namespace": "query", "job": "query", "instance": "query"} {
		if vars[name] != typ {
			t.Errorf("dashboard variable %s: type %q, want %q", name, vars[name], typ)
		}
	}

	var used []*parser.VectorSelector
	var all []panel
	for _, p := range d.Panels {
		all = append(all, p)
		all = append(all, p.Panels...)
	}
	queries := 0
	for _, p := range all {
		if p.Type == "row" {
			continue
		}
		if p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource uid %q, want the ${datasource} variable", p.Title, p.Datasource.UID)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			queries++
			if tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: a query's datasource uid %q", p.Title, tg.Datasource.UID)
			}
			for _, vs := range selectors(t, tg.Expr) {
				name := metricName(vs.LabelMatchers)
				used = append(used, vs)
				switch {
				case len(have[name]) == 0:
					t.Errorf("panel %q: %s is not a metric the agent exports", p.Title, name)
				case !have.matchesSome(vs.LabelMatchers):
					t.Errorf("panel %q: %s selects none of the series the agent exports", p.Title, vs)
				}
				for _, l := range []string{"namespace", "job", "instance"} {
					if !hasMatcher(vs.LabelMatchers, l, labels.MatchRegexp, "$"+l) {
						t.Errorf("panel %q: %s is not scoped by %s=~\"$%s\"", p.Title, name, l, l)
					}
				}
			}
		}
	}
	t.Logf("%d panels, %d queries, all parsed and checked against %d exported names", len(all), queries, len(have))
	// README's panels: runs by result and action, failure rate, durations, busy vs
	// capacity, waiting per action, lag (messages and seconds), Port requests by code and
	// 429s, budget waits and what is left of it, dropped log bytes, unclosed runs, readiness.
	for _, want := range []string{"port_runner_runs_total", `port_runner_runs_total{result="failure"}`,
		"port_runner_run_duration_seconds_bucket", `port_runner_executor_slots{state="busy"}`, "port_runner_executor_capacity",
		"port_runner_runs_waiting", "port_runner_consumer_lag", "port_runner_consumer_lag_seconds",
		"port_runner_port_requests_total", `port_runner_port_requests_total{code="429"}`,
		"port_runner_port_request_wait_seconds_bucket", "port_runner_port_budget_remaining",
		"port_runner_log_bytes_dropped_total", "port_runner_runs_unclosed_total", "port_runner_ready"} {
		if !slices.ContainsFunc(used, func(vs *parser.VectorSelector) bool { return covers(t, vs, want) }) {
			t.Errorf("no panel shows %s", want)
		}
	}
}

// covers reports whether vs selects what want (a selector) names: the same metric, with
// every one of want's label matchers among its own.
func covers(t *testing.T, vs *parser.VectorSelector, want string) bool {
	t.Helper()
	ws, err := promql.ParseMetricSelector(want)
	if err != nil {
		t.Fatalf("%s: %v", want, err)
	}
	if metricName(vs.LabelMatchers) != metricName(ws) {
		return false
	}
	for _, w := range ws {
		if !hasMatcher(vs.LabelMatchers, w.Name, w.Type, w.Value) {
			return false
		}
	}
	return true
}

func hasMatcher(ms []*labels.Matcher, name string, typ labels.MatchType, value string) bool {
	for _, m := range ms {
		if m.Name == name && m.Type == typ && m.Value == value {
			return true
		}
	}
	return false
}

// The rules file is a valid Prometheus rules file (promtool's checks, through rulefmt),
// its alerts name only exported metrics, each has a summary and a runbook entry in README,
// and the alerts README "Alerts" lists are there.
func TestAlertRules(t *testing.T) {
	have := exported(t)
	groups, errs := rulefmt.ParseFile(filepath.Join(repoRoot, rulesFile), false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Errorf("rules: %v", err)
	}
	if groups == nil {
		t.FailNow()
	}
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var alerts []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts = append(alerts, r.Alert)
			if r.Annotations["summary"] == "" {
				t.Errorf("%s: no summary", r.Alert)
			}
			anchor := "README.md#" + strings.ToLower(r.Alert)
			if !strings.HasSuffix(r.Annotations["runbook_url"], anchor) {
				t.Errorf("%s: runbook_url %q, want one ending in %s", r.Alert, r.Annotations["runbook_url"], anchor)
			}
			if !regexp.MustCompile(`(?m)^#+ ` + r.Alert + `\s*$`).Match(readme) {
				t.Errorf("%s: README has no runbook heading for it", r.Alert)
			}
			if r.For == 0 {
				t.Errorf("%s: no `for:`: one bad scrape would page", r.Alert)
			}
			vss := selectors(t, r.Expr)
			for _, vs := range vss {
				switch name := metricName(vs.LabelMatchers); {
				case name == "up":
					// Prometheus's own series per target (PortRunnerDown), not the agent's.
				case len(have[name]) == 0:
					t.Errorf("%s: %s is not a metric the agent exports", r.Alert, name)
				case !have.matchesSome(vs.LabelMatchers):
					t.Errorf("%s: %s selects none of the series the agent exports", r.Alert, vs)
				}
			}
			want, ok := alertSelects[r.Alert]
			if ok && !slices.ContainsFunc(vss, func(vs *parser.VectorSelector) bool { return covers(t, vs, want) }) {
				t.Errorf("%s: its expression does not select %s:\n%s", r.Alert, want, r.Expr)
			}
			if r.Alert == "PortRunnerRunsUnclosed" && !firesOnAnyIncrease(t, r.Expr, "port_runner_runs_unclosed_total") {
				t.Errorf("%s: want increase(port_runner_runs_unclosed_total[...]) > 0 (any increase), got:\n%s", r.Alert, r.Expr)
			}
			if r.Alert == "PortRunnerBatchSkipped" && !firesOnAnyIncrease(t, r.Expr, "port_runner_messages_total") {
				t.Errorf("%s: want increase(port_runner_messages_total{outcome=\"skipped_batch\"}[...]) > 0 (any increase), got:\n%s", r.Alert, r.Expr)
			}
		}
	}
	sort.Strings(alerts)
	t.Logf("alerts: %v", alerts)
	for want := range alertSelects {
		if !slices.Contains(alerts, want) {
			t.Errorf("no alert %s", want)
		}
	}
}

// alertSelects: the alerts README "Alerts" lists, each with a series it must be about.
var alertSelects = map[string]string{
	"PortRunnerDown":               "up",
	"PortRunnerConsumerLagGrowing": "port_runner_consumer_lag",
	"PortRunnerOldestRunWaiting":   "port_runner_consumer_lag_seconds",
	"PortRunnerFailureRatioHigh":   `port_runner_runs_total{result="failure"}`,
	"PortRunnerReplicaNotReady":    "port_runner_ready",
	"PortRunnerRateLimited":        `port_runner_port_requests_total{code="429"}`,
	"PortRunnerRunsUnclosed":       "port_runner_runs_unclosed_total",
	"PortRunnerClosingsWaiting":    "port_runner_runs_closing_oldest_seconds",
	"PortRunnerBatchSkipped":       `port_runner_messages_total{outcome="skipped_batch"}`,
}

// firesOnAnyIncrease reports whether expr is `[aggregation] increase(metric[range]) > 0`:
// one more unclosed run is enough, however many replicas there are.
func firesOnAnyIncrease(t *testing.T, expr, metric string) bool {
	t.Helper()
	e, err := promql.ParseExpr(expr)
	if err != nil {
		return false
	}
	for p, ok := e.(*parser.ParenExpr); ok; p, ok = e.(*parser.ParenExpr) {
		e = p.Expr
	}
	cmp, ok := e.(*parser.BinaryExpr)
	if !ok || cmp.Op != parser.GTR || cmp.ReturnBool {
		return false
	}
	if n, ok := cmp.RHS.(*parser.NumberLiteral); !ok || n.Val != 0 {
		return false
	}
	lhs := cmp.LHS
	if agg, ok := lhs.(*parser.AggregateExpr); ok && (agg.Op == parser.SUM || agg.Op == parser.MAX) {
		lhs = agg.Expr
	}
	call, ok := lhs.(*parser.Call)
	if !ok || call.Func.Name != "increase" || len(call.Args) != 1 {
		return false
	}
	ms, ok := call.Args[0].(*parser.MatrixSelector)
	if !ok {
		return false
	}
	vs, ok := ms.VectorSelector.(*parser.VectorSelector)
	return ok && metricName(vs.LabelMatchers) == metric
}

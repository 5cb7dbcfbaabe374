package monitoringtest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
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
	"go.uber.org/zap/zaptest"

	"github.com/port-runner/port-runner/agent"
	"github.com/port-runner/port-runner/config"
	"github.com/port-runner/port-runner/emulator"
	"github.com/port-runner/port-runner/kafkatest"
	"github.com/port-runner/port-runner/metrics"
	"github.com/port-runner/port-runner/runmsg"
)

const (
	repoRoot      = ".."
	dashboardFile = "charts/port-runner/files/dashboards/port-runner.json"
	rulesFile     = "charts/port-runner/files/alerts/port-runner.rules.yaml"
	secret        = "test-client-secret-0123456789abcdef"
)

var promql = parser.NewParser(parser.Options{})

var (
	gatherOnce sync.Once
	gathered   map[string]bool
	gatherErr  error
)

// exported returns the names of every series the agent's registry gathers after real runs
// (a success and a failure), with the _bucket/_sum/_count names of histograms: what a
// query can name. It is computed once per test binary.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	gatherOnce.Do(func() { gathered, gatherErr = runAndGather(t) })
	if gatherErr != nil {
		t.Fatal(gatherErr)
	}
	return gathered
}

func runAndGather(t *testing.T) (map[string]bool, error) {
	cluster := kafkatest.New(t)
	topic := cluster.Topic(t, 2)
	group := cluster.Group(t)
	emu := emulator.New(emulator.Options{ClientID: "test-client", ClientSecret: secret, OrgID: "org_test", Topic: topic})
	ectx, cancelEmu := context.WithCancel(context.Background())
	t.Cleanup(cancelEmu)
	base, _, err := emu.Start(ectx, "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	yaml := fmt.Sprintf(`
port: {baseURL: %q, clientID: test-client, clientSecret: %q, orgID: org_test, requestsPerSecond: 500}
kafka: {brokers: [%q], topic: %q, group: %q, startOffset: earliest}
executor: {maxConcurrent: 2, shutdownTimeout: 1s}
logs: {flushInterval: 100ms}
actions:
  ok: {command: ["/bin/sh", "-c", "echo fine"]}
  fails: {command: ["/bin/sh", "-c", "echo no; exit 3"]}
`, base, secret, strings.Join(cluster.Brokers, ","), topic, group)
	cfg, err := config.Parse([]byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(runmsg.CompileSelector, func(p string) (string, error) { return p, nil }); err != nil {
		return nil, err
	}
	m := metrics.New()
	a, err := agent.New(cfg, agent.Deps{Logger: zaptest.NewLogger(t), Metrics: m, KafkaOpts: cluster.Opts,
		MetricsAddr: "-", LagInterval: 200 * time.Millisecond})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var runErr error
	wg.Go(func() { runErr = a.Run(ctx, context.Background()) })
	defer func() { cancel(); wg.Wait() }()
	for _, r := range []struct{ id, action string }{{"r_ok", "ok"}, {"r_fails", "fails"}} {
		emu.RegisterRun(r.id, r.action)
		b, err := runmsg.Sign(secret, time.Now().Unix(), fmt.Appendf(nil, `{"action":%q,"context":{"runId":%q},"payload":{"properties":{}}}`, r.action, r.id))
		if err != nil {
			return nil, err
		}
		cluster.Produce(t, topic, []byte(r.id), b)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer wcancel()
	for _, id := range []string{"r_ok", "r_fails"} {
		if _, err := emu.WaitRun(wctx, id, func(r emulator.RunState) bool { return r.Status != "IN_PROGRESS" }); err != nil {
			return nil, fmt.Errorf("run %s: %w", id, err)
		}
	}
	// The lag collector and the saturation metrics show once the agent has read the broker.
	deadline := time.Now().Add(30 * time.Second)
	for {
		names, err := names(m)
		if err != nil {
			return nil, err
		}
		if names["port_runner_consumer_lag_seconds"] && names["port_runner_runs_total"] {
			return names, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the agent never exported its lag (run error %v); it has %d families", runErr, len(names))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func names(m *metrics.Metrics) (map[string]bool, error) {
	fams, err := m.Registry.Gather()
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, f := range fams {
		out[f.GetName()] = true
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM:
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				out[f.GetName()+s] = true
			}
		case dto.MetricType_SUMMARY:
			out[f.GetName()+"_sum"], out[f.GetName()+"_count"] = true, true
		}
	}
	return out, nil
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
// variable; the panels the operations issue asks for are there.
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
		if n := metricName(ms); !have[n] {
			t.Errorf("variable %s reads %q, which the agent does not export", v.Name, n)
		}
	}
	for name, typ := range map[string]string{"datasource": "datasource", "namespace": "query", "job": "query", "instance": "query"} {
		if vars[name] != typ {
			t.Errorf("dashboard variable %s: type %q, want %q", name, vars[name], typ)
		}
	}

	used := map[string]bool{}
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
				used[name] = true
				if !have[name] {
					t.Errorf("panel %q: %s is not a metric the agent exports", p.Title, name)
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
	// The panels: runs by result and action, failure rate, durations, busy vs
	// capacity, waiting per action, lag (messages and seconds), Port requests by code and
	// 429s, dropped log bytes, readiness.
	for _, m := range []string{"port_runner_runs_total", "port_runner_run_duration_seconds_bucket", "port_runner_executor_slots",
		"port_runner_executor_capacity", "port_runner_runs_waiting", "port_runner_consumer_lag", "port_runner_consumer_lag_seconds",
		"port_runner_port_requests_total", "port_runner_log_bytes_dropped_total", "port_runner_ready"} {
		if !used[m] {
			t.Errorf("no panel shows %s", m)
		}
	}
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
// and the alerts the issue asks for are there.
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
			for _, vs := range selectors(t, r.Expr) {
				if name := metricName(vs.LabelMatchers); !have[name] {
					t.Errorf("%s: %s is not a metric the agent exports", r.Alert, name)
				}
			}
		}
	}
	sort.Strings(alerts)
	t.Logf("alerts: %v", alerts)
	for _, want := range []string{"PortRunnerConsumerLagGrowing", "PortRunnerOldestRunWaiting", "PortRunnerFailureRatioHigh",
		"PortRunnerReplicaNotReady", "PortRunnerRateLimited", "PortRunnerRunsUnclosed"} {
		if !strings.Contains(strings.Join(alerts, " "), want) {
			t.Errorf("no alert %s", want)
		}
	}
}

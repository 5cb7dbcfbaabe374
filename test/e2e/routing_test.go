package e2e_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/metrics"
	"github.com/port-runner/port-runner/test/harness"
)

// Two deployments (two consumer groups on the same topic) configure the same action, each
// with a when filter naming its cluster: every run is executed exactly once, by the
// deployment its filter names, and left (not executed, not closed, counted) by the other.
func TestTwoDeploymentsRouteByWhen(t *testing.T) {
	h := harness.New(t, 1)
	ran := t.TempDir()
	// deployment runs one cluster's agent, in a consumer group of its own.
	deployment := func(cluster string) *harness.Agent {
		cfg := h.Config(t, quickLogs+fmt.Sprintf(`
kafka: {group: %[3]q}
actions:
  deploy:
    command: [/bin/sh, -c, 'echo "deployed by %[1]s"; : > "$RAN/$PORT_RUN_ID.%[1]s"']
    env: {RAN: %[2]q}
    when: '.payload.properties.cluster == "%[1]s"'
`, cluster, `"`+ran+`"`, h.Broker.Group(t)))
		return h.Start(t, cfg, harness.Named(cluster), harness.OwnMetrics())
	}
	eu, us := deployment("eu"), deployment("us")

	want := map[string]string{}
	for i := range 20 {
		cluster := []string{"eu", "us"}[i%2]
		run, err := h.Emu.CreateRun(context.Background(), "deploy", emulator.CreateRunRequest{Properties: map[string]any{"cluster": cluster}})
		if err != nil {
			t.Fatal(err)
		}
		want[run.ID] = cluster
	}
	for id, cluster := range want {
		run := h.WaitClosed(t, id)
		if run.Status != "SUCCESS" || run.Terminations != 1 || run.RejectedTerminations != 0 || !strings.Contains(logText(run), "deployed by "+cluster) {
			t.Errorf("run %s (%s): %s, %d terminations, %d refused, log:\n%s", id, cluster, run.Status, run.Terminations, run.RejectedTerminations, logText(run))
		}
	}
	for name, a := range map[string]*harness.Agent{"eu": eu, "us": us} {
		waitMetric(t, name+" filtered", a.Metrics.MessagesTotal.WithLabelValues(metrics.OutcomeFiltered), 10)
		if n := testutil.ToFloat64(a.Metrics.RunsTotal.WithLabelValues("deploy", "success")); n != 10 {
			t.Errorf("%s ran %v runs, want 10", name, n)
		}
	}
	// Each deployment has seen all 20 by now: its own 10 closed, the other 10 filtered (the
	// groups read the topic independently, so a closing by one says nothing of the other's
	// progress). Executions are the marker files, one per run, by its cluster.
	files, _ := filepath.Glob(filepath.Join(ran, "*"))
	var got []string
	for _, f := range files {
		got = append(got, filepath.Base(f))
	}
	var wantFiles []string
	for id, cluster := range want {
		wantFiles = append(wantFiles, id+"."+cluster)
	}
	sort.Strings(got)
	sort.Strings(wantFiles)
	if strings.Join(got, " ") != strings.Join(wantFiles, " ") {
		t.Fatalf("executions:\n got %v\nwant %v", got, wantFiles)
	}
}

// waitMetric waits for a counter to reach want and fails if it goes past it.
func waitMetric(t *testing.T, what string, c prometheus.Counter, want float64) {
	t.Helper()
	waitcond.For(t, what, 30*time.Second, func() bool { return testutil.ToFloat64(c) >= want })
	if got := testutil.ToFloat64(c); got != want {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

// With workflowNodeRuns.unmatched: fail, a node run no action matches is completed FAILED in
// Port (its workflow does not wait for it), once, with a line saying why.
func TestUnmatchedNodeRunFailed(t *testing.T) {
	h := harness.New(t, 1)
	cfg := h.Config(t, quickLogs+fmt.Sprintf(`
workflowNodeRuns: {unmatched: fail}
actions:
  build:
    command: [/bin/sh, -c, "echo built"]
    workflowNode: {url: %q}
`, emulator.NodeURL("ci", "build")))
	a := h.Start(t, cfg)
	nr, err := h.Emu.CreateNodeRun(context.Background(), "ci", "test", emulator.CreateNodeRunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	run := h.WaitClosed(t, nr.ID)
	if run.Result != "FAILED" || run.Terminations != 1 || !strings.Contains(logText(run), "no action of this deployment matches this workflow node run") {
		t.Fatalf("node run %+v\n%s", run, logText(run))
	}
	waitMetric(t, "unmatched", a.Metrics.MessagesTotal.WithLabelValues(metrics.OutcomeUnmatched), 1)
}

package budget

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/port-runner/port-runner/internal/agent"
	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/runmsg"
	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/metrics"
	"github.com/port-runner/port-runner/test/kafkatest"
)

const secret = "budget-test-secret-0123456789abcdef"

// org is one Port organization (the emulator and its budget) and its runs topic, with the
// replicas of one deployment in one consumer group.
type org struct {
	cluster *kafkatest.Cluster
	topic   string
	group   string
	emu     *emulator.Emulator
	srv     *emulator.Server
	agents  []*agent.Agent
	metrics []*metrics.Metrics
	// statusInterval is the replicas' port.runStatusInterval (0: the default).
	statusInterval time.Duration
}

func newOrg(t testing.TB, partitions int, opts emulator.Options) *org {
	t.Helper()
	o := &org{cluster: kafkatest.New(t)}
	o.topic = o.cluster.Topic(t, partitions)
	o.group = o.cluster.Group(t)
	opts.ClientID, opts.ClientSecret, opts.OrgID, opts.Topic = "budget-client", secret, "org_budget", o.topic
	o.emu = emulator.New(opts)
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := o.emu.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatalf("emulator: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := srv.Wait(); err != nil {
			t.Errorf("emulator: %v", err)
		}
	})
	o.srv = srv
	return o
}

// script writes a command and returns its path.
func script(t testing.TB, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cmd.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// start runs n replicas of the agent with the given command for action "build"; each stops
// when the test ends. It returns once every replica is ready and the group has settled with
// all n members owning partitions, so runs produced afterwards are fresh runs to all.
func (o *org) start(t testing.TB, n int, rps float64, command string) {
	t.Helper()
	yaml := fmt.Sprintf(`
port: {baseURL: %q, clientID: budget-client, clientSecret: %q, orgID: org_budget, requestsPerSecond: %v}
kafka: {brokers: [%q], topic: %q, group: %q, startOffset: earliest}
executor: {maxConcurrent: 8, shutdownTimeout: 10s}
logs: {flushInterval: 1s}
actions:
  build: {command: [%q]}
`, o.srv.URL(), secret, rps, strings.Join(o.cluster.Brokers, ","), o.topic, o.group, command)
	cfg, err := config.Parse([]byte(yaml), func(string) (string, bool) { return "", false })
	if err == nil {
		err = cfg.Validate(runmsg.CompileSelector, func(p string) (string, error) { return p, nil })
	}
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	if o.statusInterval > 0 {
		cfg.Port.RunStatusInterval = config.Duration(o.statusInterval)
	}
	for i := 0; i < n; i++ {
		m := metrics.New()
		a, err := agent.New(cfg, agent.Deps{
			Logger:  zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).With(zap.Int("replica", i)),
			Metrics: m, KafkaOpts: o.cluster.Opts, MetricsAddr: "-",
		})
		if err != nil {
			t.Fatalf("agent: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var runErr error
		wg.Go(func() { runErr = a.Run(ctx, context.Background()) })
		t.Cleanup(func() {
			cancel()
			wg.Wait()
			if runErr != nil {
				t.Errorf("replica %d: %v", i, runErr)
			}
		})
		o.agents = append(o.agents, a)
		o.metrics = append(o.metrics, m)
	}
	adm := kadm.NewClient(o.cluster.Client(t))
	waitcond.For(t, "every replica ready and the group settled", 60*time.Second, func() bool {
		for _, a := range o.agents {
			if a.Ready() != nil {
				return false
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		groups, err := adm.DescribeGroups(ctx, o.group)
		if err != nil {
			return false
		}
		g := groups[o.group]
		if g.Err != nil || g.State != "Stable" || len(g.Members) != n {
			return false
		}
		for _, m := range g.Members {
			if a, ok := m.Assigned.AsConsumer(); !ok || len(a.Topics) == 0 {
				return false
			}
		}
		return true
	})
}

// produce registers n runs in Port and puts their messages on the topic; it returns the
// run ids in order.
func (o *org) produce(t testing.TB, prefix string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("r_%s_%03d", prefix, i)
		o.emu.RegisterRun(ids[i], "build")
		body := fmt.Sprintf(`{"action":"build","context":{"runId":%q},"payload":{"properties":{}}}`, ids[i])
		msg, err := runmsg.Sign(secret, time.Now().Unix(), []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		o.cluster.Produce(t, o.topic, []byte(ids[i]), msg)
	}
	return ids
}

// waitClosed waits for every run to end and returns them.
func (o *org) waitClosed(t testing.TB, ids []string, timeout time.Duration) []emulator.RunState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	runs := make([]emulator.RunState, len(ids))
	for i, id := range ids {
		r, err := o.emu.WaitRun(ctx, id, func(r emulator.RunState) bool { return r.Status != "IN_PROGRESS" })
		if err != nil {
			t.Fatalf("%d of %d runs closed: %v", i, len(ids), err)
		}
		runs[i] = r
	}
	return runs
}

// checkRuns asserts every run closed once as SUCCESS with exactly want(id) as its log
// lines, in order, before the agent's summary line.
func checkRuns(t testing.TB, runs []emulator.RunState, want func(id string) []string) {
	t.Helper()
	bad := 0
	for _, r := range runs {
		var lines []string
		for _, l := range r.Logs {
			lines = append(lines, strings.Split(l.Message, "\n")...)
		}
		exp := want(r.ID)
		ok := r.Status == "SUCCESS" && r.Terminations == 1 && r.RejectedTerminations == 0 &&
			len(lines) == len(exp)+1 && strings.HasPrefix(lines[len(lines)-1], "port-runner: exit code 0") &&
			strings.Join(lines[:len(exp)], "\n") == strings.Join(exp, "\n")
		if !ok {
			if bad++; bad <= 3 {
				t.Errorf("run %s: %s, %d terminations, %d rejected, log:\n%s", r.ID, r.Status, r.Terminations, r.RejectedTerminations, strings.Join(lines, "\n"))
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d runs wrong", bad, len(runs))
	}
}

// twentyLines is what the 20-line command prints.
func twentyLines(id string) []string {
	out := make([]string, 20)
	for i := range out {
		out[i] = fmt.Sprintf("line %d of %s", i+1, id)
	}
	return out
}

const twentyLinesScript = `i=1; while [ $i -le 20 ]; do echo "line $i of $PORT_RUN_ID"; i=$((i+1)); done`

// traffic sums up the emulator's requests since from.
type traffic struct {
	accepted, rejected int // answered, and answered 429
	first, last        time.Time
}

func trafficSince(e *emulator.Emulator, from time.Time) traffic {
	var tr traffic
	for _, r := range e.Requests() {
		if r.At.Before(from) {
			continue
		}
		if tr.first.IsZero() {
			tr.first = r.At
		}
		tr.last = r.At
		if r.Status == 429 {
			tr.rejected++
		} else {
			tr.accepted++
		}
	}
	return tr
}

// log429s says when in its window each 429 came, for a failure's diagnosis.
func log429s(t testing.TB, e *emulator.Emulator, period time.Duration) {
	t.Helper()
	for _, r := range e.Requests() {
		if r.Status == 429 {
			t.Logf("429 for %s %s, %v into its window", r.Method, r.Path, r.At.Sub(r.At.Truncate(period)))
		}
	}
}

// agentMetrics sums over the replicas: 429s counted in port_requests_total, samples of
// port_request_wait_seconds, and each replica's port_budget_remaining.
func (o *org) agentMetrics(t testing.TB) (got429 float64, waitSamples uint64, remaining []float64) {
	t.Helper()
	for _, m := range o.metrics {
		mfs, err := m.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, s := range mf.GetMetric() {
				switch mf.GetName() {
				case "port_runner_port_requests_total":
					for _, l := range s.GetLabel() {
						if l.GetName() == "code" && l.GetValue() == "429" {
							got429 += s.GetCounter().GetValue()
						}
					}
				case "port_runner_port_request_wait_seconds":
					waitSamples += s.GetHistogram().GetSampleCount()
				case "port_runner_port_budget_remaining":
					remaining = append(remaining, s.GetGauge().GetValue())
				}
			}
		}
	}
	return got429, waitSamples, remaining
}

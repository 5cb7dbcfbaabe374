package e2e_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/port-runner/port-runner/internal/agent"
	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/runmsg"
	"github.com/port-runner/port-runner/metrics"
	"github.com/port-runner/port-runner/test/kafkatest"
)

// secret is the Port client secret: it signs messages and keys secret inputs (>= 32 bytes).
const secret = "e2e-client-secret-0123456789abcdef"

type harness struct {
	cluster *kafkatest.Cluster
	topic   string
	group   string
	emu     *emulator.Emulator
	baseURL string
	metrics *metrics.Metrics
	logs    *observer.ObservedLogs // every agent log line, debug included
}

// newHarness starts the broker fixture and the emulator, which produces the runs it
// creates (action runs and workflow node runs) to the fixture's topic.
func newHarness(t *testing.T, tune func(*emulator.Options)) *harness {
	t.Helper()
	return newHarnessOn(t, kafkatest.New(t), tune)
}

func newHarnessOn(t *testing.T, cluster *kafkatest.Cluster, tune func(*emulator.Options)) *harness {
	t.Helper()
	h := &harness{cluster: cluster, metrics: metrics.New()}
	h.topic = h.cluster.Topic(t, 1)
	h.group = h.cluster.Group(t)
	producer := h.cluster.Client(t)
	opts := emulator.Options{ClientID: "e2e-client", ClientSecret: secret, OrgID: "org_e2e", Topic: h.topic,
		Produce: func(ctx context.Context, topic string, key, value []byte) error {
			return producer.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: key, Value: value}).FirstErr()
		}}
	if tune != nil {
		tune(&opts)
	}
	h.emu = emulator.New(opts)
	ctx, cancel := context.WithCancel(context.Background())
	base, wait, err := h.emu.Start(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = wait() })
	h.baseURL = base
	return h
}

// config is the agent's config; kafka is its kafka: section (flow YAML).
func (h *harness) configWith(t *testing.T, kafka, actions string) *config.Config {
	t.Helper()
	yaml := fmt.Sprintf(`
port: {baseURL: %q, clientID: e2e-client, clientSecret: %q, orgID: org_e2e, requestsPerSecond: 200}
kafka: %s
executor: {maxConcurrent: 4, shutdownTimeout: 10s}
logs: {flushInterval: 100ms}
actions:
%s`, h.baseURL, secret, kafka, actions)
	cfg, err := config.Parse([]byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	if err := cfg.Validate(runmsg.CompileSelector, func(p string) (string, error) { return p, nil }); err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

func (h *harness) config(t *testing.T, actions string) *config.Config {
	return h.configWith(t, fmt.Sprintf(`{brokers: [%q], topic: %q, group: %q, startOffset: earliest}`,
		strings.Join(h.cluster.Brokers, ","), h.topic, h.group), actions)
}

// start runs the agent until the test ends; its logs go to the test log and h.logs.
func (h *harness) start(t *testing.T, cfg *config.Config, deps agent.Deps) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	h.logs = logs
	deps.Logger = zap.New(zapcore.NewTee(core, zaptest.NewLogger(t).Core()))
	deps.Metrics = h.metrics
	deps.MetricsAddr = "-"
	h.run(t, cfg, deps)
}

// run assembles an agent and runs it until the test ends.
func (h *harness) run(t *testing.T, cfg *config.Config, deps agent.Deps) {
	t.Helper()
	if deps.KafkaOpts == nil {
		deps.KafkaOpts = h.cluster.Opts
	}
	a, err := agent.New(cfg, deps)
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
			t.Errorf("agent: %v", runErr)
		}
	})
}

func (h *harness) waitEnded(t *testing.T, id string) emulator.RunState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	run, err := h.emu.WaitRun(ctx, id, func(r emulator.RunState) bool { return r.Status != "IN_PROGRESS" })
	if err != nil {
		t.Fatalf("run %s never ended: %v", id, err)
	}
	return run
}

// agentLogText is every agent log line with its fields, for asserting what never appears.
func (h *harness) agentLogText() string {
	var b strings.Builder
	for _, e := range h.logs.All() {
		b.WriteString(e.Message)
		for k, v := range e.ContextMap() {
			fmt.Fprintf(&b, " %s=%v", k, v)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func logText(r emulator.RunState) string {
	var b strings.Builder
	for _, l := range r.Logs {
		b.WriteString(l.Message + "\n")
	}
	return b.String()
}

func writeScript(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "script.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// waitFor polls cond until it holds or the deadline passes: work in a partition finishes
// out of order, so a test waits for what it needs, not for a run it produced later.

package agent_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap/zaptest"

	"github.com/port-runner/port-runner/internal/agent"
	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/metrics"
	"github.com/port-runner/port-runner/test/kafkatest"
)

// saslConfig points the harness's agent at the broker's SASL_SSL listener the way a user
// points it at Port's Kafka: mechanism, username, password and the CA file, all from config.
func saslConfig(t *testing.T, h *harness, password string) *config.Config {
	t.Helper()
	brokers, user, pass, caFile, ok := kafkatest.SASL(t)
	if !ok {
		t.Skip("no SASL_SSL broker (KAFKA_SASL_BROKERS unset); scripts/test runs this against real Kafka")
	}
	if h.cluster.Kind != kafkatest.KindExternal {
		// The SASL endpoint is another listener of the KAFKA_BROKERS broker: the fixture's
		// topic must live there too.
		t.Skip("KAFKA_SASL_BROKERS set without KAFKA_BROKERS: the topic would not be on that broker")
	}
	if password == "" {
		password = pass
	}
	cfg := h.config(t, `
  create_microservice: {command: ["echo", "over SASL_SSL"]}
`)
	cfg.Kafka.Brokers = brokers
	cfg.Kafka.SASL = config.SASL{Mechanism: "SCRAM-SHA-512", Username: user, Password: password}
	cfg.Kafka.TLS = config.TLS{Enabled: true, CAFile: caFile}
	return cfg
}

// startPlain starts an agent with only the config's own Kafka options (no fixture options).
func startPlain(t *testing.T, h *harness, cfg *config.Config) (*agent.Agent, func() error) {
	t.Helper()
	a, err := agent.New(cfg, agent.Deps{Logger: zaptest.NewLogger(t), Metrics: metrics.New()})
	if err != nil {
		t.Fatalf("agent: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- a.Run(ctx, context.Background()) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() { cancel(); runErr = <-errc })
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return a, stop
}

func TestAgentOverSASLSSL(t *testing.T) {
	h := newHarness(t, 2)
	cfg := saslConfig(t, h, "")
	h.emu.RegisterRun("r_sasl", "create_microservice")
	h.produceRun(t, "r_sasl", "create_microservice")
	_, stop := startPlain(t, h, cfg)
	run := waitTerminated(t, h.emu, "r_sasl")
	if run.Status != "SUCCESS" || !strings.Contains(run.Logs[0].Message, "over SASL_SSL") {
		t.Fatalf("run over SASL_SSL: %+v", run)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestAgentWrongKafkaPasswordFailsFast(t *testing.T) {
	h := newHarness(t, 1)
	cfg := saslConfig(t, h, "not-the-password")
	err, waited := runUntilItStops(t, cfg, nil)
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "sasl") {
		t.Fatalf("wrong password: Run returned %v, want a SASL authentication error", err)
	}
	t.Logf("wrong password refused after %s: %v", waited.Round(time.Millisecond), err)
}

// runUntilItStops runs an agent that must stop by itself (a start-up error) well within 20s.
func runUntilItStops(t *testing.T, cfg *config.Config, kafkaOpts []kgo.Opt) (error, time.Duration) {
	t.Helper()
	a, err := agent.New(cfg, agent.Deps{Logger: zaptest.NewLogger(t), KafkaOpts: kafkaOpts})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	err = a.Run(ctx, ctx)
	if ctx.Err() != nil {
		t.Fatalf("agent still trying after 20s (%v): it should fail fast", err)
	}
	return err, time.Since(start)
}

func TestAgentWrongPortCredentialsFailsFast(t *testing.T) {
	h := newHarness(t, 1)
	cfg := h.config(t, `
  create_microservice: {command: ["true"]}
`)
	cfg.Port.ClientSecret = "wrong"
	err, _ := runUntilItStops(t, cfg, h.cluster.Opts)
	if err == nil || !strings.Contains(err.Error(), "port api") {
		t.Fatalf("wrong Port secret: Run returned %v, want a Port credentials error", err)
	}
}

// TestRebalanceWhileRunsFlow: a second agent joins the group and leaves again while runs
// flow; every run ends with exactly one termination.
func TestRebalanceWhileRunsFlow(t *testing.T) {
	h := newHarness(t, 6)
	const runs = 60
	cfg := h.config(t, `
  create_microservice: {command: ["sh", "-c", "sleep 0.2; echo done $PORT_RUN_ID"]}
`)
	ids := make([]string, runs)
	for i := range ids {
		ids[i] = fmt.Sprintf("r_rebalance_%03d", i)
		h.emu.RegisterRun(ids[i], "create_microservice")
	}
	produce := func(from, to int) {
		for i := from; i < to; i++ {
			h.produceRun(t, ids[i], "create_microservice")
		}
	}
	first := h.start(t, cfg)
	produce(0, 20)
	waitTerminated(t, h.emu, ids[0])

	second := h.start(t, cfg)
	produce(20, 40)
	waitcond.For(t, "some runs of the second batch to end", 60*time.Second, func() bool { return terminatedCount(h.emu, ids[20:40]) >= 5 })
	if err := second(); err != nil {
		t.Fatalf("second agent: %v", err)
	}
	produce(40, runs)
	for _, id := range ids {
		run := waitTerminated(t, h.emu, id)
		if run.Terminations != 1 || run.Status != "SUCCESS" {
			t.Errorf("run %s: %d terminations, status %s %q", id, run.Terminations, run.Status, run.StatusLabel)
		}
		if run.RejectedTerminations != 0 {
			t.Logf("run %s was closed a second time (rejected by Port): executed twice across the rebalance", id)
		}
	}
	if err := first(); err != nil {
		t.Fatalf("first agent: %v", err)
	}
	assertCommittedToEnd(t, h)
}

func terminatedCount(emu *emulator.Emulator, ids []string) int {
	n := 0
	for _, id := range ids {
		if r, ok := emu.Run(id); ok && r.Status != "IN_PROGRESS" {
			n++
		}
	}
	return n
}

package agent_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/test/harness"
)

// saslConfig points the harness's agent at the broker's SASL_SSL listener the way a user
// points it at Port's Kafka: mechanism, username, password and the CA file, all from config.
func saslConfig(t *testing.T, h *harness.Env, password string) *config.Config {
	t.Helper()
	brokers, user, pass, caFile, ok := harness.SASL(t)
	if !ok {
		t.Skip("no SASL_SSL broker (KAFKA_SASL_BROKERS unset); scripts/test runs this against real Kafka")
	}
	if h.Broker.Kind != harness.KindExternal {
		// The SASL endpoint is another listener of the KAFKA_BROKERS broker: the fixture's
		// topic must live there too.
		t.Skip("KAFKA_SASL_BROKERS set without KAFKA_BROKERS: the topic would not be on that broker")
	}
	if password == "" {
		password = pass
	}
	cfg := h.Config(t, harness.Actions(`
  create_microservice: {command: ["echo", "over SASL_SSL"]}
`))
	cfg.Kafka.Brokers = brokers
	cfg.Kafka.SASL = config.SASL{Mechanism: "SCRAM-SHA-512", Username: user, Password: password}
	cfg.Kafka.TLS = config.TLS{Enabled: true, CAFile: caFile}
	return cfg
}

func TestAgentOverSASLSSL(t *testing.T) {
	h := harness.New(t, 2)
	cfg := saslConfig(t, h, "")
	h.NewRun(t, "r_sasl", "create_microservice")
	stop := h.Start(t, cfg, harness.KafkaOpts()).Stop // the config's own Kafka options only
	run := h.WaitClosed(t, "r_sasl")
	if run.Status != "SUCCESS" || !strings.Contains(run.Logs[0].Message, "over SASL_SSL") {
		t.Fatalf("run over SASL_SSL: %+v", run)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestAgentWrongKafkaPasswordFailsFast(t *testing.T) {
	h := harness.New(t, 1)
	cfg := saslConfig(t, h, "not-the-password")
	err, waited := runUntilItStops(t, h, cfg)
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "sasl") {
		t.Fatalf("wrong password: Run returned %v, want a SASL authentication error", err)
	}
	t.Logf("wrong password refused after %s: %v", waited.Round(time.Millisecond), err)
}

// runUntilItStops runs an agent that must stop by itself (a start-up error) well within 20s,
// with kafkaOpts as its only Kafka options besides its config's.
func runUntilItStops(t *testing.T, h *harness.Env, cfg *config.Config, kafkaOpts ...kgo.Opt) (error, time.Duration) {
	t.Helper()
	start := time.Now()
	a := h.Start(t, cfg, harness.KafkaOpts(kafkaOpts...))
	select {
	case <-a.Done():
	case <-time.After(20 * time.Second):
		t.Fatalf("agent still trying after 20s: it should fail fast")
	}
	return a.Err(), time.Since(start)
}

func TestAgentWrongPortCredentialsFailsFast(t *testing.T) {
	h := harness.New(t, 1)
	cfg := h.Config(t, harness.Actions(`
  create_microservice: {command: ["true"]}
`))
	cfg.Port.ClientSecret = "wrong"
	err, _ := runUntilItStops(t, h, cfg, h.Broker.Opts...)
	if err == nil || !strings.Contains(err.Error(), "port api") {
		t.Fatalf("wrong Port secret: Run returned %v, want a Port credentials error", err)
	}
}

// TestRebalanceWhileRunsFlow: a second agent joins the group and leaves again while runs
// flow; every run ends with exactly one termination.
func TestRebalanceWhileRunsFlow(t *testing.T) {
	h := harness.New(t, 6)
	const runs = 60
	cfg := h.Config(t, harness.Actions(`
  create_microservice: {command: ["sh", "-c", "sleep 0.2; echo done $PORT_RUN_ID"]}
`))
	ids := make([]string, runs)
	for i := range ids {
		ids[i] = fmt.Sprintf("r_rebalance_%03d", i)
		h.Emu.RegisterRun(ids[i], "create_microservice")
	}
	produce := func(from, to int) {
		for i := from; i < to; i++ {
			h.ProduceRun(t, ids[i], "create_microservice")
		}
	}
	first := h.Start(t, cfg).Stop
	produce(0, 20)
	h.WaitClosed(t, ids[0])

	second := h.Start(t, cfg).Stop
	produce(20, 40)
	waitcond.For(t, "some runs of the second batch to end", 60*time.Second, func() bool { return h.ClosedCount(ids[20:40]) >= 5 })
	if err := second(); err != nil {
		t.Fatalf("second agent: %v", err)
	}
	produce(40, runs)
	for _, id := range ids {
		run := h.WaitClosed(t, id)
		if run.Terminations != 1 || run.Status != "SUCCESS" {
			t.Errorf("run %s: %d terminations, status %s %q", id, run.Terminations, run.Status, run.StatusLabel)
		}
		if run.RejectedTerminations != 0 {
			t.Logf("run %s was closed a second time (rejected by Port): executed twice across the rebalance", id)
		}
	}
	h.WaitCommittedToEnd(t, 30*time.Second) // before the agent stops: it commits its last runs
	if err := first(); err != nil {
		t.Fatalf("first agent: %v", err)
	}
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

package agent

import (
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kzap"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/port-runner/port-runner/consumer"
	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/portapi"
	"github.com/port-runner/port-runner/internal/runmsg"
)

// unsigned handles a message skipped for carrying no signature. If its action is one this
// agent runs, that is almost surely a setup problem (Port is not signing, or the messages
// pass through something that drops the headers) and must not go unnoticed: the first one
// is an error that names the setting, and every one is counted. It reports whether it
// logged the message.
func (a *Agent) unsigned(raw []byte, where string, err error) bool {
	if !errors.Is(err, runmsg.ErrUnsigned) || a.peek == nil {
		return false
	}
	run, perr := a.peek.Decode(raw)
	if perr != nil {
		return false
	}
	if act, _ := a.route(&run); act == nil {
		return false
	}
	a.metrics.UnsignedMessages.Inc()
	fields := []zap.Field{zap.String("at", where), zap.String("action", run.Action),
		zap.String("claimed_run_id", run.ID), zap.Error(err)}
	const why = "unsigned run message of a configured action skipped: security.verifySignature is true, so only messages signed with port.clientSecret run; " +
		"Port signs the runs it hands its agent (invocation method Webhook or GitLab with agent: true) with the organization's client secret; " +
		"its docs show no signature on Kafka-method runs: pick Webhook with agent: true, check port.clientSecret, or set security.verifySignature: false (README \"Which invocation method\")"
	if a.unsignedSeen.CompareAndSwap(false, true) {
		a.log.Error(why, fields...)
	} else {
		a.log.Warn("unsigned run message of a configured action skipped (security.verifySignature)", fields...)
	}
	return true
}

// kpromGauges renames the two gauges kprom names ..._total (records buffered now, not a
// count that only grows), which `promtool check metrics` flags.
func kpromGauges() map[string]string {
	return map[string]string{
		"port_runner_kafka_buffered_fetch_records_total":   "port_runner_kafka_buffered_fetch_records",
		"port_runner_kafka_buffered_produce_records_total": "port_runner_kafka_buffered_produce_records",
	}
}

// kafkaClients prepares the Kafka clients' options for k's brokers: the consumer's, and a
// plain client's (the start check, the lag collector), which joins no group.
func (a *Agent) kafkaClients(k config.Kafka) error {
	kopts, err := kafkaOpts(k)
	if err != nil {
		return err
	}
	// franz-go's own logs: warnings and errors only (its info lines are per connection), all
	// of them when the agent logs at debug (PORT_RUNNER_LOG_LEVEL=debug), and none before
	// the start check passed: a refused broker is then one line, Run's error.
	level := kgo.LogLevelWarn
	if a.log.Core().Enabled(zapcore.DebugLevel) {
		level = kgo.LogLevelDebug
	}
	kopts = append(kopts, kgo.WithLogger(kzap.New(a.log.Named("kafka"), kzap.LevelFn(func() kgo.LogLevel {
		if a.kafkaLogs.Load() {
			return level
		}
		return kgo.LogLevelNone
	}))))
	a.kafka = k
	a.lagOpts = append(append([]kgo.Opt{kgo.SeedBrokers(k.Brokers...)}, kopts...), a.deps.KafkaOpts...)
	a.consumerOpts = append(kopts, a.deps.KafkaOpts...)
	return nil
}

// newConsumer builds the consumer, which joins the group at once (kafkaClients first).
func (a *Agent) newConsumer() error {
	k := a.kafka
	c, err := consumer.New(consumer.Options{
		Brokers:        k.Brokers,
		Topic:          k.Topic,
		Group:          k.Group,
		StartOffset:    k.StartOffset,
		GroupProtocol:  k.GroupProtocol,
		ClientOpts:     a.consumerOpts,
		ClientHooks:    a.kafkaMetrics.hooks, // a rejoin makes a new client: its metrics are its own
		Slots:          a.pool,
		MaxPoll:        a.cfg.Executor.MaxConcurrent,
		SessionTimeout: k.SessionTimeout.D(),
		Fence:          k.Fence(),
		Drain:          a.cfg.Drain(a.timings.closingBudget),
		LeaseMargin:    config.LeaseMargin,
		HistoryAge:     a.cfg.Security.MaxMessageAge.D(),
		MaxFuture:      runmsg.MaxFuture,
		Logger:         a.log,
		// A batch that does not decompress within the bound is skipped (README "Delivery").
		MaxDecompressBatchBytes: int(k.MaxDecompressBatchBytes),
		OnSkippedBatch:          a.skippedBatch,
		OnFatal: func(err error) {
			select {
			case a.fatal <- err:
			default: // one is enough to stop
			}
		},
	})
	a.consumer = c
	a.member.Store(c)
	return err
}

// shimFence is the fence each command's shim keeps (executor.Spec.Fence): this replica stops
// renewing half a fence after its last confirmed membership, and the shim kills the command
// 3/8 of a fence after the last renewal, at most 1/64 late (its check's period), so every
// command is dead within the fence. Once the replica has left the group its runs' leases
// end at a known time instead, which the shims are told (executor.Spec.Lasts).
func (a *Agent) shimFence() time.Duration { return a.cfg.Kafka.Fence() * 3 / 8 }

// kafkaFromPort is k with the brokers and credentials Port gave (consumerFromPort, and
// validate --connect).
func kafkaFromPort(k config.Kafka, cr portapi.KafkaCredentials, plaintext bool) config.Kafka {
	k.Brokers = cr.Brokers
	k.SASL = config.SASL{Mechanism: "SCRAM-SHA-512", Username: cr.Username, Password: cr.Password}
	if !plaintext {
		k.TLS.Enabled = true
	}
	if k.Group == "" {
		k.Group = cr.Username
	}
	return k
}

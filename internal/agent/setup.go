package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kzap"
	"go.uber.org/zap"

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
	if _, ok := a.lookupAction(&run); !ok {
		return false
	}
	a.metrics.UnsignedMessages.Inc()
	fields := []zap.Field{zap.String("at", where), zap.String("action", run.Action),
		zap.String("claimed_run_id", run.ID), zap.Error(err)}
	const why = "unsigned run message of a configured action skipped: security.verifySignature is true, so only messages signed with port.clientSecret run; " +
		"check that Port signs this action's messages with this client's secret, or set security.verifySignature: false if you must accept unsigned messages"
	if a.unsignedSeen.CompareAndSwap(false, true) {
		a.log.Error(why, fields...)
	} else {
		a.log.Warn("unsigned run message of a configured action skipped (security.verifySignature)", fields...)
	}
	return true
}

// newConsumer builds the consumer for k's brokers.
func (a *Agent) newConsumer(k config.Kafka) error {
	kopts, err := kafkaOpts(k)
	if err != nil {
		return err
	}
	// franz-go's own logs: warnings and errors only (its info lines are per connection), and
	// none before the start check passed: a refused broker is then one line, Run's error.
	kopts = append(kopts, kgo.WithLogger(kzap.New(a.log.Named("kafka"), kzap.LevelFn(func() kgo.LogLevel {
		if a.kafkaLogs.Load() {
			return kgo.LogLevelWarn
		}
		return kgo.LogLevelNone
	}))))
	a.kafka = k
	a.lagOpts = append(append([]kgo.Opt{kgo.SeedBrokers(k.Brokers...)}, kopts...), a.deps.KafkaOpts...)
	kopts = append(kopts, kgo.WithHooks(a.kafkaProm))
	a.consumer, err = consumer.New(consumer.Options{
		Brokers:       k.Brokers,
		Topic:         k.Topic,
		Group:         k.Group,
		StartOffset:   k.StartOffset,
		GroupProtocol: k.GroupProtocol,
		// The group waits this long for a revoke, which releases partitions only once their
		// runs here are closed (consumer.Options.StopWait).
		ClientOpts: append(append(kopts, kgo.RebalanceTimeout(k.RebalanceTimeout())), a.deps.KafkaOpts...),
		Slots:      a.pool,
		MaxPoll:    a.cfg.Executor.MaxConcurrent,
		RevokeWait: k.RevokeTimeout.D(),
		StopWait:   config.KillGrace + a.timings.closingBudget,
		Logger:     a.log,
		Runs:       a.lives, // the revoke asks the run lifecycle what it still holds
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
	return err
}

// consumerFromPort gets the organization's Kafka credentials from Port with the agent's
// Port credentials (kafka.brokers not configured) and builds the consumer: SASL_SSL with
// SCRAM-SHA-512, as Port's managed Kafka is, and the Kafka username as the group unless
// kafka.group names one (Port's rule allows it).
func (a *Agent) consumerFromPort(ctx context.Context) error {
	cr, err := a.api.KafkaCredentials(ctx)
	if err != nil {
		return fmt.Errorf("kafka.brokers not configured, and Port did not give Kafka credentials: %w", err)
	}
	k := kafkaFromPort(a.cfg.Kafka, cr, a.timings.plaintextKafka)
	a.log.Info("using Kafka credentials from Port", zap.Strings("brokers", cr.Brokers), zap.String("group", k.Group))
	return a.newConsumer(k)
}

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

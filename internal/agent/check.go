package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/portapi"
)

// Check is one connection check of `validate --connect`.
type Check struct {
	Name    string // "kafka brokers", "kafka SASL", "kafka topic", "kafka group", "port credentials"
	Detail  string // what was found, when it passed
	Err     error  // why it failed; nil: passed
	Skipped string // why it was not tried (an earlier check failed, or nothing to check)
}

// CheckConnections tries what the agent needs at start, each step on its own so the
// answer says which one fails: the brokers, SASL, the topic, the group's offsets, and
// Port's credentials. extra is added to the Kafka client's options (tests).
// With kafka.brokers not configured, the Kafka checks use the credentials Port gives.
func CheckConnections(ctx context.Context, cfg *config.Config, extra ...kgo.Opt) []Check {
	port, api := checkPort(ctx, cfg)
	if cfg.Polls() {
		return []Check{port, checkClaims(ctx, port, api)}
	}
	k := cfg.Kafka
	if k.FromPort() {
		from := Check{Name: "kafka credentials from Port"}
		if port.Err != nil {
			from.Skipped = "the Port credentials failed"
			return []Check{port, from}
		}
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		cr, err := api.KafkaCredentials(cctx)
		if err != nil {
			from.Err = fmt.Errorf("kafka.brokers not configured, and Port did not give Kafka credentials: %w", err)
			return []Check{port, from}
		}
		from.Detail = fmt.Sprintf("brokers %v, user %q", cr.Brokers, cr.Username)
		k = kafkaFromPort(k, cr, false)
		return append([]Check{port, from}, checkKafka(ctx, k, extra)...)
	}
	return append(checkKafka(ctx, k, extra), port)
}

func checkKafka(ctx context.Context, k config.Kafka, extra []kgo.Opt) []Check {
	brokers := Check{Name: "kafka brokers"}
	sasl := Check{Name: "kafka SASL"}
	topic := Check{Name: "kafka topic"}
	group := Check{Name: "kafka group"}
	skipAll := func(why string, cs ...*Check) []Check {
		for _, c := range cs {
			c.Skipped = why
		}
		return []Check{brokers, sasl, topic, group}
	}
	kopts, err := kafkaOpts(k)
	if err != nil {
		brokers.Err = err
		return skipAll("the brokers were not reached", &sasl, &topic, &group)
	}
	dialed := &dialHook{}
	// No retries: a check reports the first failure, it does not wait it out.
	base := []kgo.Opt{kgo.SeedBrokers(k.Brokers...), kgo.RequestRetries(0), kgo.WithHooks(dialed)}
	cl, err := kgo.NewClient(append(append(base, kopts...), extra...)...)
	if err != nil {
		brokers.Err = err
		return skipAll("the brokers were not reached", &sasl, &topic, &group)
	}
	defer cl.Close()

	// The first request opens a connection, with TLS and SASL: its error says which failed.
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	_, err = kmsg.NewPtrApiVersionsRequest().RequestWith(cctx, cl)
	switch {
	// A broker may answer a failed authentication by closing the connection (EOF): after a
	// successful dial (TLS included), a failure with SASL configured is SASL's.
	case isSASLError(err) || err != nil && dialed.ok.Load() && k.SASL.Mechanism != "":
		brokers.Detail = fmt.Sprintf("%v answered", k.Brokers)
		sasl.Err = fmt.Errorf("%s as %q: %w", k.SASL.Mechanism, k.SASL.Username, err)
		return skipAll("SASL failed", &topic, &group)
	case err != nil:
		brokers.Err = fmt.Errorf("%v: %w", k.Brokers, err)
		return skipAll("the brokers were not reached", &sasl, &topic, &group)
	}
	brokers.Detail = fmt.Sprintf("%v answered", k.Brokers)
	if k.SASL.Mechanism == "" {
		sasl.Skipped = "no kafka.sasl.mechanism configured"
	} else {
		sasl.Detail = fmt.Sprintf("%s as %q", k.SASL.Mechanism, k.SASL.Username)
	}

	adm := kadm.NewClient(cl)
	meta, err := adm.Metadata(cctx, k.Topic)
	switch {
	case err != nil:
		topic.Err = fmt.Errorf("%s: %w", k.Topic, err)
	case meta.Topics[k.Topic].Err != nil:
		topic.Err = fmt.Errorf("%s: %w", k.Topic, meta.Topics[k.Topic].Err)
	default:
		topic.Detail = fmt.Sprintf("%s, %d partition(s)", k.Topic, len(meta.Topics[k.Topic].Partitions))
	}
	offsets, err := adm.FetchOffsets(cctx, k.Group)
	switch {
	case err != nil && !errors.Is(err, kerr.GroupIDNotFound):
		group.Err = fmt.Errorf("%s: reading its committed offsets: %w", k.Group, err)
	default:
		n := 0
		offsets.Each(func(o kadm.OffsetResponse) {
			if o.Topic == k.Topic && o.Err == nil && o.At >= 0 {
				n++
			}
		})
		group.Detail = fmt.Sprintf("%s, offsets committed for %d partition(s) of the topic", k.Group, n)
	}
	return []Check{brokers, sasl, topic, group}
}

// checkClaims asks Port's claim-pending route once (transport: polling), with the shortest
// visibility timeout Port takes: a run it happens to claim is not acknowledged, and any
// agent may claim it again a second later.
func checkClaims(ctx context.Context, port Check, api *portapi.Client) Check {
	c := Check{Name: "port claim API"}
	if port.Err != nil {
		c.Skipped = "the Port credentials failed"
		return c
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	got, err := api.ClaimRuns(cctx, portapi.Claim{Limit: 1, VisibilityTimeout: config.MinVisibility})
	if err != nil {
		c.Err = fmt.Errorf("transport: polling, but Port's claim route refused: %w", err)
		return c
	}
	c.Detail = fmt.Sprintf("POST /v1/actions/runs/claim-pending answered (%d pending run(s) seen; left to reappear after %s)", len(got), config.MinVisibility)
	return c
}

// dialHook notes whether a broker was ever dialed: franz-go passes the connection whenever
// the dial worked, with the error of what followed it (SASL) if anything failed.
type dialHook struct{ ok atomic.Bool }

func (d *dialHook) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, conn net.Conn, _ error) {
	if conn != nil {
		d.ok.Store(true)
	}
}

func isSASLError(err error) bool {
	return errors.Is(err, kerr.SaslAuthenticationFailed) || errors.Is(err, kerr.UnsupportedSaslMechanism) ||
		errors.Is(err, kerr.IllegalSaslState)
}

func checkPort(ctx context.Context, cfg *config.Config) (Check, *portapi.Client) {
	c := Check{Name: "port credentials"}
	api, err := portapi.New(portapi.Options{BaseURL: cfg.Port.BaseURL, ClientID: cfg.Port.ClientID,
		ClientSecret: cfg.Port.ClientSecret, MaxBackoff: time.Second})
	if err != nil {
		c.Err = err
		return c, nil
	}
	tctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	at := config.ShownURL(cfg.Port.BaseURL)
	if _, err := api.Token(tctx); err != nil {
		c.Err = fmt.Errorf("client %q at %s: %w", cfg.Port.ClientID, at, err)
		return c, api
	}
	c.Detail = fmt.Sprintf("client %q got a token from %s", cfg.Port.ClientID, at)
	return c, api
}

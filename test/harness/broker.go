package harness

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Kinds of [Broker].
const (
	KindKfake     = "kfake"
	KindExternal  = "external"
	KindContainer = "container"
)

// Environment variables that choose the broker (see [NewBroker]).
const (
	EnvBrokers       = "KAFKA_BROKERS"
	EnvSecurity      = "KAFKA_SECURITY" // "SASL_SSL": the SASL endpoint instead
	EnvSASLBrokers   = "KAFKA_SASL_BROKERS"
	EnvSASLUsername  = "KAFKA_SASL_USERNAME"
	EnvSASLPassword  = "KAFKA_SASL_PASSWORD"
	EnvSASLMechanism = "KAFKA_SASL_MECHANISM"
	EnvCAFile        = "KAFKA_CA_FILE"
	EnvDocker        = "PORT_RUNNER_TEST_DOCKER"
)

// opTimeout bounds every admin / produce call made by the helpers.
const opTimeout = 30 * time.Second

// Broker is a Kafka broker a test can use.
type Broker struct {
	// Brokers are the seed brokers (host:port).
	Brokers []string
	// Opts are the connection options clients need besides the seed
	// brokers (SASL/TLS when configured); may be empty.
	Opts []kgo.Opt
	// Kind is "kfake", "external" or "container".
	Kind string

	// Fake is the in-process broker when Kind is "kfake" (nil otherwise), for tests that
	// script a broker answer no real broker can be made to give on demand.
	Fake *kfake.Cluster

	mu       sync.Mutex
	producer *kgo.Client
}

// NewBroker returns a broker for t, chosen by the environment:
//
//   - KAFKA_BROKERS set (e.g. by `eval "$(scripts/kafka-local.sh start)"`): that external
//     broker, over PLAINTEXT. With KAFKA_SECURITY=SASL_SSL the SASL_SSL endpoint described
//     by KAFKA_SASL_BROKERS, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD, KAFKA_SASL_MECHANISM
//     and KAFKA_CA_FILE instead (see [SASL]).
//   - PORT_RUNNER_TEST_DOCKER=1: a testcontainers-go Kafka container (needs `-tags docker`
//     and a Docker engine; skipped otherwise).
//   - otherwise: an in-process kfake cluster.
//
// Anything it starts is stopped with t.Cleanup. Topic and group names are unique per call,
// so tests may share one real broker and run in parallel.
func NewBroker(t testing.TB) *Broker {
	t.Helper()
	var c *Broker
	switch {
	case os.Getenv(EnvBrokers) != "":
		c = newExternal(t)
		c.waitGroupCoordinator(t)
	case os.Getenv(EnvDocker) == "1":
		c = newContainer(t) // docker.go / nodocker.go
		c.waitGroupCoordinator(t)
	default:
		c = newKfake(t)
	}
	t.Cleanup(c.closeProducer)
	return c
}

func newExternal(t testing.TB) *Broker {
	t.Helper()
	if strings.EqualFold(os.Getenv(EnvSecurity), "SASL_SSL") {
		brokers, user, pass, caFile, ok := SASL(t)
		if !ok {
			t.Fatalf("harness: %s=SASL_SSL but %s is not set", EnvSecurity, EnvSASLBrokers)
		}
		opts, err := SASLOpts(os.Getenv(EnvSASLMechanism), user, pass, caFile)
		if err != nil {
			t.Fatalf("harness: %v", err)
		}
		return &Broker{Brokers: brokers, Opts: opts, Kind: KindExternal}
	}
	return &Broker{Brokers: splitBrokers(os.Getenv(EnvBrokers)), Kind: KindExternal}
}

func newKfake(t testing.TB) *Broker {
	t.Helper()
	kc, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.DefaultNumPartitions(1),
		// Match the real broker fixture: small session timeouts are allowed.
		kfake.GroupMinSessionTimeout(time.Second),
	)
	if err != nil {
		t.Fatalf("harness: starting kfake cluster: %v", err)
	}
	t.Cleanup(kc.Close)
	return &Broker{Brokers: kc.ListenAddrs(), Kind: KindKfake, Fake: kc}
}

func splitBrokers(s string) []string {
	var out []string
	for _, b := range strings.Split(s, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// SASL returns the SASL_SSL endpoint described by KAFKA_SASL_BROKERS,
// KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD and KAFKA_CA_FILE, or ok=false
// when KAFKA_SASL_BROKERS is unset (the caller should t.Skip). The mechanism
// is in KAFKA_SASL_MECHANISM (default SCRAM-SHA-512); see [SASLOpts].
func SASL(t testing.TB) (brokers []string, username, password, caFile string, ok bool) {
	t.Helper()
	brokers = splitBrokers(os.Getenv(EnvSASLBrokers))
	if len(brokers) == 0 {
		return nil, "", "", "", false
	}
	return brokers, os.Getenv(EnvSASLUsername), os.Getenv(EnvSASLPassword), os.Getenv(EnvCAFile), true
}

// SASLOpts builds the client options for a SASL_SSL listener: TLS that
// trusts caFile (the system roots when caFile is empty) and the SASL
// mechanism (SCRAM-SHA-512 when empty, SCRAM-SHA-256 or PLAIN).
func SASLOpts(mechanism, username, password, caFile string) ([]kgo.Opt, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("reading CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no PEM certificates in CA file %s", caFile)
		}
		tlsCfg.RootCAs = pool
	}
	var mech sasl.Mechanism
	switch strings.ToUpper(mechanism) {
	case "", "SCRAM-SHA-512":
		mech = scram.Auth{User: username, Pass: password}.AsSha512Mechanism()
	case "SCRAM-SHA-256":
		mech = scram.Auth{User: username, Pass: password}.AsSha256Mechanism()
	case "PLAIN":
		mech = plain.Auth{User: username, Pass: password}.AsMechanism()
	default:
		return nil, fmt.Errorf("unsupported SASL mechanism %q", mechanism)
	}
	return []kgo.Opt{kgo.DialTLSConfig(tlsCfg), kgo.SASL(mech)}, nil
}

func (b *Broker) clientOpts(extra ...kgo.Opt) []kgo.Opt {
	opts := make([]kgo.Opt, 0, 1+len(b.Opts)+len(extra))
	opts = append(opts, kgo.SeedBrokers(b.Brokers...))
	opts = append(opts, b.Opts...)
	return append(opts, extra...)
}

// Client returns a kgo.Client for the cluster with b.Opts plus extra,
// closed at t's cleanup.
func (b *Broker) Client(t testing.TB, extra ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(b.clientOpts(extra...)...)
	if err != nil {
		t.Fatalf("harness: new client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Admin returns a kadm.Client for the cluster, closed at t's cleanup.
func (b *Broker) Admin(t testing.TB) *kadm.Client {
	t.Helper()
	return kadm.NewClient(b.Client(t))
}

// admin is an admin client the caller closes: for checks a test makes many times.
func (b *Broker) admin(t testing.TB) *kadm.Client {
	t.Helper()
	return kadm.NewClient(b.mustClient(t))
}

// uniqueName returns prefix-<test name>-<random>, a valid Kafka topic or
// group name of at most ~120 characters.
func uniqueName(t testing.TB, prefix string) string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		default:
			return '_'
		}
	}, t.Name())
	if len(name) > 100 {
		name = name[len(name)-100:]
	}
	return prefix + "-" + name + "-" + hex.EncodeToString(b[:])
}

// Topic creates a uniquely named topic with the given number of partitions
// (replication factor 1), waits until every partition has a leader, and
// deletes it at t's cleanup. It returns the topic name.
func (b *Broker) Topic(t testing.TB, partitions int) string {
	t.Helper()
	if partitions < 1 {
		t.Fatalf("harness: Topic needs at least one partition, got %d", partitions)
	}
	name := uniqueName(t, "kt")
	adm := b.admin(t)
	defer adm.Close()

	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, int32(partitions), 1, nil, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("harness: creating topic %s: %v", name, err)
	}
	t.Cleanup(func() { b.deleteTopic(t, name) })

	// A real broker creates the topic asynchronously: wait until the
	// metadata shows all partitions with a leader.
	poll(ctx, t, "topic "+name, func() (bool, error) {
		md, err := adm.Metadata(ctx, name)
		return err == nil && leadersReady(md, name, partitions), err
	})
	return name
}

// waitGroupCoordinator waits until the broker answers group requests: a fresh broker
// creates its offsets topic on the first one and answers COORDINATOR_NOT_AVAILABLE until
// that topic is loaded, which a test's first group request (a commit, a lag read) would
// otherwise meet.
func (b *Broker) waitGroupCoordinator(t testing.TB) {
	t.Helper()
	adm := b.admin(t)
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	probe := uniqueName(t, "kt-probe")
	const offsets = "__consumer_offsets"
	poll(ctx, t, "the group coordinator", func() (bool, error) {
		if _, err := adm.FetchOffsets(ctx, probe); err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
			return false, err
		}
		md, err := adm.Metadata(ctx, offsets)
		return err == nil && leadersReady(md, offsets, 0), err
	})
}

// leadersReady reports whether md shows the topic with want partitions (any number, if 0),
// each with a leader.
func leadersReady(md kadm.Metadata, topic string, want int) bool {
	td, ok := md.Topics[topic]
	if !ok || td.Err != nil || len(td.Partitions) == 0 || want > 0 && len(td.Partitions) != want {
		return false
	}
	for _, p := range td.Partitions {
		if p.Err != nil || p.Leader < 0 {
			return false
		}
	}
	return true
}

// poll calls ready every 100ms until it says so, or fails t when ctx ends, with the last
// error ready gave.
func poll(ctx context.Context, t testing.TB, what string, ready func() (bool, error)) {
	t.Helper()
	for {
		ok, err := ready()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("harness: %s not ready after %s (last error: %v)", what, opTimeout, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (b *Broker) deleteTopic(t testing.TB, name string) {
	cl, err := kgo.NewClient(b.clientOpts()...)
	if err != nil {
		t.Logf("harness: deleting topic %s: %v", name, err)
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	resp, err := kadm.NewClient(cl).DeleteTopic(ctx, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Logf("harness: deleting topic %s: %v", name, err)
	}
}

// mustClient is a client without cleanup registration, for helpers that
// close it themselves.
func (b *Broker) mustClient(t testing.TB) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(b.clientOpts()...)
	if err != nil {
		t.Fatalf("harness: new client: %v", err)
	}
	return cl
}

// Group returns a unique consumer group name.
func (b *Broker) Group(t testing.TB) string {
	t.Helper()
	return uniqueName(t, "kt-group")
}

// Produce writes one record synchronously and fails t on error. The producer client is
// shared by all Produce calls on b and closed when the test that called NewBroker ends.
func (b *Broker) Produce(t testing.TB, topic string, key, value []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := b.ProduceContext(ctx, topic, key, value); err != nil {
		t.Fatalf("harness: producing to %s: %v", topic, err)
	}
}

// ProduceContext writes one record with the shared producer of [Broker.Produce]; the
// emulator produces the runs it creates with it.
func (b *Broker) ProduceContext(ctx context.Context, topic string, key, value []byte) error {
	cl, err := b.sharedProducer()
	if err != nil {
		return fmt.Errorf("new producer: %w", err)
	}
	return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: key, Value: value}).FirstErr()
}

func (b *Broker) sharedProducer() (*kgo.Client, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.producer != nil {
		return b.producer, nil
	}
	cl, err := kgo.NewClient(b.clientOpts()...)
	if err != nil {
		return nil, err
	}
	b.producer = cl
	return cl, nil
}

func (b *Broker) closeProducer() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.producer != nil {
		b.producer.Close()
		b.producer = nil
	}
}

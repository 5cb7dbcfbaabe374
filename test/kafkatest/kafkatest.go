// Package kafkatest gives every integration test one Kafka broker fixture.
//
// [New] picks the broker from the environment:
//
//   - KAFKA_BROKERS set (e.g. by `eval "$(scripts/kafka-local.sh start)"`):
//     that external broker, over PLAINTEXT. With KAFKA_SECURITY=SASL_SSL the
//     fixture instead uses the SASL_SSL endpoint described by
//     KAFKA_SASL_BROKERS, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD,
//     KAFKA_SASL_MECHANISM and KAFKA_CA_FILE (see [SASL]).
//   - PORT_RUNNER_TEST_DOCKER=1: a testcontainers-go Kafka container (needs
//     `-tags docker` and a Docker engine; skipped otherwise).
//   - otherwise: an in-process kfake cluster, closed when the test ends.
//
// Topic and group names are unique per call, so tests may share one real
// broker and run in parallel.
package kafkatest

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Kinds of [Cluster].
const (
	KindKfake     = "kfake"
	KindExternal  = "external"
	KindContainer = "container"
)

// Environment variables read by this package.
const (
	EnvBrokers       = "KAFKA_BROKERS"
	EnvSecurity      = "KAFKA_SECURITY" // "SASL_SSL" makes New use the SASL endpoint
	EnvSASLBrokers   = "KAFKA_SASL_BROKERS"
	EnvSASLUsername  = "KAFKA_SASL_USERNAME"
	EnvSASLPassword  = "KAFKA_SASL_PASSWORD"
	EnvSASLMechanism = "KAFKA_SASL_MECHANISM"
	EnvCAFile        = "KAFKA_CA_FILE"
	EnvDocker        = "PORT_RUNNER_TEST_DOCKER"
)

// opTimeout bounds every admin / produce call made by the helpers.
const opTimeout = 30 * time.Second

// Cluster is a Kafka broker a test can use.
type Cluster struct {
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

// New returns a broker for t; see the package documentation for how it is
// chosen. Anything it starts is stopped with t.Cleanup.
func New(t testing.TB) *Cluster {
	t.Helper()
	var c *Cluster
	switch {
	case os.Getenv(EnvBrokers) != "":
		c = newExternal(t)
	case os.Getenv(EnvDocker) == "1":
		c = newContainer(t) // docker.go / nodocker.go
	default:
		c = newKfake(t)
	}
	t.Cleanup(c.closeProducer)
	return c
}

func newExternal(t testing.TB) *Cluster {
	t.Helper()
	if strings.EqualFold(os.Getenv(EnvSecurity), "SASL_SSL") {
		brokers, user, pass, caFile, ok := SASL(t)
		if !ok {
			t.Fatalf("kafkatest: %s=SASL_SSL but %s is not set", EnvSecurity, EnvSASLBrokers)
		}
		opts, err := SASLOpts(os.Getenv(EnvSASLMechanism), user, pass, caFile)
		if err != nil {
			t.Fatalf("kafkatest: %v", err)
		}
		return &Cluster{Brokers: brokers, Opts: opts, Kind: KindExternal}
	}
	return &Cluster{Brokers: splitBrokers(os.Getenv(EnvBrokers)), Kind: KindExternal}
}

func newKfake(t testing.TB) *Cluster {
	t.Helper()
	kc, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.DefaultNumPartitions(1),
		// Match the real broker fixture: small session timeouts are allowed.
		kfake.GroupMinSessionTimeout(time.Second),
	)
	if err != nil {
		t.Fatalf("kafkatest: starting kfake cluster: %v", err)
	}
	t.Cleanup(kc.Close)
	return &Cluster{Brokers: kc.ListenAddrs(), Kind: KindKfake, Fake: kc}
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

func (c *Cluster) clientOpts(extra ...kgo.Opt) []kgo.Opt {
	opts := make([]kgo.Opt, 0, 1+len(c.Opts)+len(extra))
	opts = append(opts, kgo.SeedBrokers(c.Brokers...))
	opts = append(opts, c.Opts...)
	return append(opts, extra...)
}

// Client returns a kgo.Client for the cluster with c.Opts plus extra,
// closed at t's cleanup.
func (c *Cluster) Client(t testing.TB, extra ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(c.clientOpts(extra...)...)
	if err != nil {
		t.Fatalf("kafkatest: new client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Admin returns a kadm.Client for the cluster, closed at t's cleanup.
func (c *Cluster) Admin(t testing.TB) *kadm.Client {
	t.Helper()
	return kadm.NewClient(c.Client(t))
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
func (c *Cluster) Topic(t testing.TB, partitions int) string {
	t.Helper()
	if partitions < 1 {
		t.Fatalf("kafkatest: Topic needs at least one partition, got %d", partitions)
	}
	name := uniqueName(t, "kt")
	adm := kadm.NewClient(c.mustClient(t))
	defer adm.Close()

	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, int32(partitions), 1, nil, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("kafkatest: creating topic %s: %v", name, err)
	}
	t.Cleanup(func() { c.deleteTopic(t, name) })

	// A real broker creates the topic asynchronously: wait until the
	// metadata shows all partitions with a leader.
	for {
		md, err := adm.Metadata(ctx, name)
		if err == nil {
			if td, ok := md.Topics[name]; ok && td.Err == nil && len(td.Partitions) == partitions {
				ready := true
				for _, p := range td.Partitions {
					if p.Err != nil || p.Leader < 0 {
						ready = false
						break
					}
				}
				if ready {
					return name
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("kafkatest: topic %s not ready after %s (last error: %v)", name, opTimeout, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *Cluster) deleteTopic(t testing.TB, name string) {
	cl, err := kgo.NewClient(c.clientOpts()...)
	if err != nil {
		t.Logf("kafkatest: deleting topic %s: %v", name, err)
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
		t.Logf("kafkatest: deleting topic %s: %v", name, err)
	}
}

// mustClient is a client without cleanup registration, for helpers that
// close it themselves.
func (c *Cluster) mustClient(t testing.TB) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(c.clientOpts()...)
	if err != nil {
		t.Fatalf("kafkatest: new client: %v", err)
	}
	return cl
}

// Group returns a unique consumer group name.
func (c *Cluster) Group(t testing.TB) string {
	t.Helper()
	return uniqueName(t, "kt-group")
}

// Produce writes one record synchronously and fails t on error. The
// producer client is shared by all Produce calls on c and closed when the
// test that called New ends.
func (c *Cluster) Produce(t testing.TB, topic string, key, value []byte) {
	t.Helper()
	cl, err := c.sharedProducer()
	if err != nil {
		t.Fatalf("kafkatest: new producer: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: key, Value: value}).FirstErr(); err != nil {
		t.Fatalf("kafkatest: producing to %s: %v", topic, err)
	}
}

func (c *Cluster) sharedProducer() (*kgo.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.producer != nil {
		return c.producer, nil
	}
	cl, err := kgo.NewClient(c.clientOpts()...)
	if err != nil {
		return nil, err
	}
	c.producer = cl
	return cl, nil
}

func (c *Cluster) closeProducer() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.producer != nil {
		c.producer.Close()
		c.producer = nil
	}
}

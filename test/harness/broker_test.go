package harness_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/port-runner/port-runner/test/harness"
)

// consumeN polls cl until n records arrived or the deadline passes.
func consumeN(t *testing.T, cl *kgo.Client, n int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var got []*kgo.Record
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before %s", len(got), n, timeout)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch error on %s/%d: %v", topic, p, err)
		})
		got = append(got, fs.Records()...)
	}
	return got
}

// supportsKIP848 reports whether every broker serves ConsumerGroupHeartbeat
// v1, which franz-go needs before it uses KIP-848 groups.
func supportsKIP848(t *testing.T, c *harness.Broker) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	vs, err := c.Admin(t).ApiVersions(ctx)
	if err != nil {
		t.Fatalf("api versions: %v", err)
	}
	ok := len(vs) > 0
	vs.Each(func(v kadm.BrokerApiVersions) {
		if max, exists := v.KeyMaxVersion(int16(kmsg.ConsumerGroupHeartbeat)); !exists || max < 1 {
			ok = false
		}
	})
	return ok
}

// TestGroupConsumeCommit creates a 3-partition topic, produces 30 records
// (10 per partition), consumes them in a consumer group, commits, and checks
// the committed offsets with kadm — once with the classic group protocol and
// once with KIP-848 (server-side assignment).
func TestGroupConsumeCommit(t *testing.T) {
	c := harness.NewBroker(t)
	t.Logf("cluster kind %s, brokers %v", c.Kind, c.Brokers)

	for _, tc := range []struct {
		name     string
		opts     []kgo.Opt
		wantType string
	}{
		{name: "classic", wantType: "classic"},
		{name: "kip848", opts: []kgo.Opt{kgo.ServerSideBalancer()}, wantType: "consumer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.wantType == "consumer" && !supportsKIP848(t, c) {
				t.Skip("broker does not support ConsumerGroupHeartbeat v1 (KIP-848 needs Kafka 4.0+)")
			}
			const partitions, perPartition = 3, 10
			topic := c.Topic(t, partitions)
			group := c.Group(t)

			prod := c.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
			var recs []*kgo.Record
			for i := range partitions * perPartition {
				recs = append(recs, &kgo.Record{
					Topic:     topic,
					Partition: int32(i % partitions),
					Key:       fmt.Appendf(nil, "k%d", i),
					Value:     fmt.Appendf(nil, "v%d", i),
				})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}

			opts := append([]kgo.Opt{
				kgo.ConsumerGroup(group),
				kgo.ConsumeTopics(topic),
				kgo.DisableAutoCommit(),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
				kgo.FetchMaxWait(500 * time.Millisecond),
			}, tc.opts...)
			cons := c.Client(t, opts...)
			got := consumeN(t, cons, partitions*perPartition, 60*time.Second)
			if len(got) != partitions*perPartition {
				t.Fatalf("consumed %d records, want %d", len(got), partitions*perPartition)
			}
			seen := map[string]bool{}
			for _, r := range got {
				if string(r.Value) != "v"+strings.TrimPrefix(string(r.Key), "k") {
					t.Errorf("record %s=%s: key and value do not match", r.Key, r.Value)
				}
				seen[string(r.Key)] = true
			}
			if len(seen) != partitions*perPartition {
				t.Errorf("got %d distinct keys, want %d", len(seen), partitions*perPartition)
			}
			if err := cons.CommitUncommittedOffsets(ctx); err != nil {
				t.Fatalf("commit: %v", err)
			}

			adm := c.Admin(t)
			if tc.wantType != "" {
				groups, err := adm.ListGroups(ctx)
				if err != nil {
					t.Fatalf("list groups: %v", err)
				}
				if lg, ok := groups[group]; !ok {
					t.Errorf("group %s not listed", group)
				} else if lg.GroupType != "" && lg.GroupType != tc.wantType {
					t.Errorf("group type %q, want %q", lg.GroupType, tc.wantType)
				} else {
					t.Logf("group %s: type %q state %q", group, lg.GroupType, lg.State)
				}
			}

			offs, err := adm.FetchOffsets(ctx, group)
			if err != nil {
				t.Fatalf("fetch offsets: %v", err)
			}
			if err := offs.Error(); err != nil {
				t.Fatalf("fetch offsets: %v", err)
			}
			for p := range int32(partitions) {
				o, ok := offs.Lookup(topic, p)
				if !ok {
					t.Errorf("no committed offset for %s/%d", topic, p)
					continue
				}
				if o.At != perPartition {
					t.Errorf("committed offset for partition %d = %d, want %d", p, o.At, perPartition)
				}
			}
			cons.Close() // leave the group before the topic is deleted
		})
	}
}

// TestProduceHelper checks Broker.Produce and that Topic names are unique.
func TestProduceHelper(t *testing.T) {
	c := harness.NewBroker(t)
	topic := c.Topic(t, 1)
	if other := c.Topic(t, 1); other == topic {
		t.Fatalf("Topic returned %q twice", topic)
	}
	if g1, g2 := c.Group(t), c.Group(t); g1 == g2 {
		t.Fatalf("Group returned %q twice", g1)
	}
	for i := range 3 {
		c.Produce(t, topic, fmt.Appendf(nil, "k%d", i), fmt.Appendf(nil, "v%d", i))
	}
	cons := c.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := consumeN(t, cons, 3, 30*time.Second)
	for i, r := range got {
		if want := fmt.Sprintf("v%d", i); string(r.Value) != want {
			t.Errorf("record %d = %q, want %q", i, r.Value, want)
		}
	}
}

func saslCluster(t *testing.T) (brokers []string, user, pass, caFile, mech string) {
	t.Helper()
	brokers, user, pass, caFile, ok := harness.SASL(t)
	if !ok {
		t.Skip("KAFKA_SASL_BROKERS not set (run scripts/kafka-local.sh start)")
	}
	return brokers, user, pass, caFile, os.Getenv(harness.EnvSASLMechanism)
}

// TestSASL connects to the SASL_SSL listener with SCRAM and the CA file,
// produces and consumes.
func TestSASL(t *testing.T) {
	brokers, user, pass, caFile, mech := saslCluster(t)
	opts, err := harness.SASLOpts(mech, user, pass, caFile)
	if err != nil {
		t.Fatal(err)
	}
	c := &harness.Broker{Brokers: brokers, Opts: opts, Kind: harness.KindExternal}
	topic := c.Topic(t, 1)
	c.Produce(t, topic, []byte("sasl-key"), []byte("sasl-value"))

	cons := c.Client(t,
		kgo.ConsumerGroup(c.Group(t)),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	got := consumeN(t, cons, 1, 30*time.Second)
	if string(got[0].Key) != "sasl-key" || string(got[0].Value) != "sasl-value" {
		t.Fatalf("got %s=%s", got[0].Key, got[0].Value)
	}
	cons.Close()
}

// TestSASLWrongPassword: a bad password must fail fast with an
// authentication error, not hang in retries.
func TestSASLWrongPassword(t *testing.T) {
	brokers, user, _, caFile, mech := saslCluster(t)
	opts, err := harness.SASLOpts(mech, user, "definitely-wrong", caFile)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(opts,
		kgo.SeedBrokers(brokers...),
		kgo.DialTimeout(3*time.Second),
		kgo.RequestRetries(0),
		kgo.RetryTimeout(5*time.Second),
	)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	start := time.Now()
	_, err = kadm.NewClient(cl).ListTopics(ctx)
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("ListTopics with a wrong password succeeded")
	}
	t.Logf("wrong password failed after %s: %v", elapsed.Round(time.Millisecond), err)
	if !errors.Is(err, kerr.SaslAuthenticationFailed) &&
		!strings.Contains(strings.ToLower(err.Error()), "authentication") &&
		!strings.Contains(strings.ToLower(err.Error()), "sasl") {
		t.Errorf("error does not mention authentication/SASL: %v", err)
	}
	if elapsed > 10*time.Second {
		t.Errorf("wrong password took %s to fail, want < 10s", elapsed)
	}
}

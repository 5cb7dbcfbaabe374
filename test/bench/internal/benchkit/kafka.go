//go:build linux

// Package benchkit is what the bench commands share: Kafka (in-process kfake or an external
// broker), signed run messages, the Port emulator with a termination tracker, the agent
// run as a separate process (built by test/harness), and /proc readings of that process.
package benchkit

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/runmsg"
)

// Credentials and org the emulator accepts and the messages are signed with.
const (
	OrgID        = "org_bench"
	ClientID     = "bench-client"
	ClientSecret = "bench-client-secret"
)

// Kafka is the broker the bench produces to and the agent consumes from.
type Kafka struct {
	Brokers  []string
	Desc     string
	external bool
	topics   []string // created by NewTopic; deleted at Close on an external broker
	close    func()
	commits  *atomic.Int64 // OffsetCommit requests kfake received; nil on an external broker
}

// Commits is how many offset commits the broker has received, ok false where the bench
// cannot see them (an external broker).
func (k *Kafka) Commits() (n int64, ok bool) {
	if k.commits == nil {
		return 0, false
	}
	return k.commits.Load(), true
}

// StartKafka uses the external PLAINTEXT brokers (comma separated) when given, otherwise an
// in-process kfake broker.
func StartKafka(brokers string) (*Kafka, error) {
	if brokers != "" {
		return &Kafka{Brokers: strings.Split(brokers, ","), Desc: "external " + brokers, external: true, close: func() {}}, nil
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		return nil, fmt.Errorf("kfake: %w", err)
	}
	commits := new(atomic.Int64)
	cluster.ControlKey(kmsg.OffsetCommit.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		commits.Add(1)
		return nil, nil, false // only counted: kfake answers it
	})
	return &Kafka{Brokers: cluster.ListenAddrs(), Desc: "kfake (in-process, 1 broker)", close: cluster.Close, commits: commits}, nil
}

// Close deletes the bench's topics from an external broker (kfake goes away whole).
func (k *Kafka) Close() {
	defer k.close()
	if !k.external || len(k.topics) == 0 {
		return
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...))
	if err != nil {
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = kadm.NewClient(cl).DeleteTopics(ctx, k.topics...)
}

// NewTopic creates a topic of its own for one agent, named after the case.
func (k *Kafka) NewTopic(ctx context.Context, name string, partitions int) (string, error) {
	topic := fmt.Sprintf("%s.runs.%s-%d", OrgID, name, time.Now().UnixNano())
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...))
	if err != nil {
		return "", err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, int32(partitions), 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return "", fmt.Errorf("create topic %s: %w", topic, err)
	}
	k.topics = append(k.topics, topic)
	return topic, nil
}

// Template is a Port run message shaped like a signed create_microservice run message, as
// Port sends it, without its headers; ACTION, RUN_ID
// and NAME are replaced per message and the result is signed with runmsg.Sign.
const Template = `{"action":"ACTION","resourceType":"run","status":"TRIGGERED","trigger":{"by":{"orgId":"org_bench","userId":"auth0|638879fa62c686d381b36ecb","user":{"email":"test@test.com","firstName":"test","lastName":"test","id":"auth0|638879fa62c686d381b36ecb"}},"origin":"UI","at":"2022-12-07T12:53:52.916Z"},"context":{"entity":null,"blueprint":"microservice","runId":"RUN_ID"},"payload":{"entity":null,"action":{"id":"action_ed2B0O9CbEYkuqvN","identifier":"ACTION","title":"Create Microservice","userInputs":{"properties":{"name":{"title":"Service name","type":"string"},"region":{"title":"Cloud Region","type":"string"}}},"invocationMethod":{"url":"https://getport.io","agent":false,"type":"WEBHOOK"},"trigger":"CREATE","description":"Create new microservice","blueprint":"microservice","createdAt":"2022-12-07T09:48:28.659Z","createdBy":"auth0|638879fa62c686d381b36ecb","updatedAt":"2022-12-07T09:48:28.659Z","updatedBy":"auth0|638879fa62c686d381b36ecb"},"properties":{"name":"NAME","region":"eu-west-1"}}}`

// Message is the signed run message of run id for action.
func Message(action, id, name string) ([]byte, error) {
	body := strings.NewReplacer("ACTION", action, "RUN_ID", id, "NAME", name).Replace(Template)
	return runmsg.Sign(ClientSecret, time.Now().Unix(), []byte(body))
}

// Producer writes run messages and registers each run in the emulator first, so the
// agent's closing request is accepted.
type Producer struct {
	cl  *kgo.Client
	emu *emulator.Emulator
	// Pad adds this many bytes to each message (in its "name" input), for bigger messages.
	Pad int
}

// NewProducer makes a producer with the given extra options (linger, compression).
func NewProducer(k *Kafka, emu *emulator.Emulator, opts ...kgo.Opt) (*Producer, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(k.Brokers...)}, opts...)...)
	if err != nil {
		return nil, err
	}
	return &Producer{cl: cl, emu: emu}, nil
}

func (p *Producer) Close() { p.cl.Close() }

func (p *Producer) name(id string) string { return "service-" + id + strings.Repeat("x", p.Pad) }

// Client is the producer's Kafka client, for callers that need more than runs.
func (p *Producer) Client() *kgo.Client { return p.cl }

// One produces one run and waits for the broker's ack.
func (p *Producer) One(ctx context.Context, topic, action, id string) error {
	msg, err := Message(action, id, p.name(id))
	if err != nil {
		return err
	}
	p.emu.RegisterRun(id, action)
	return p.cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(id), Value: msg}).FirstErr()
}

// Many produces one run per id, batched, and waits for every ack; it returns the bytes
// produced.
func (p *Producer) Many(ctx context.Context, topic, action string, ids []string) (int64, error) {
	var (
		mu       sync.Mutex
		firstErr error
		total    int64
	)
	for _, id := range ids {
		msg, err := Message(action, id, p.name(id))
		if err != nil {
			return 0, err
		}
		total += int64(len(msg))
		p.emu.RegisterRun(id, action)
		p.cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(id), Value: msg}, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	if err := p.cl.Flush(ctx); err != nil {
		return 0, err
	}
	mu.Lock()
	defer mu.Unlock()
	if firstErr != nil {
		return 0, fmt.Errorf("produce: %w", firstErr)
	}
	return total, nil
}

// IDs returns n run ids with a prefix of their own.
func IDs(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("r_%s%09d", prefix, i)
	}
	return ids
}

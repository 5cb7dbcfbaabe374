package agent

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/port-runner/port-runner/metrics"
)

// TestKafkaMetricsAfterANewClient: the consumer makes a new client when it rejoins the group
// under a new member id; /metrics must still gather, with the newest client's series once.
// (One kprom Metrics shared by both clients collected every series twice: a 500.)
func TestKafkaMetricsAfterANewClient(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	m := metrics.New()
	var k kafkaMetrics
	defer m.Attach("kafka", metrics.Renamed(&k, kpromGauges()))()
	for i := range 3 {
		cl, err := kgo.NewClient(kgo.SeedBrokers(kc.ListenAddrs()...), kgo.WithHooks(k.hooks()...))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = cl.Ping(ctx)
		cancel()
		if err != nil {
			t.Fatalf("client %d: ping: %v", i, err)
		}
		families, err := m.Registry.Gather()
		cl.Close()
		if err != nil {
			t.Fatalf("client %d: /metrics does not gather: %v", i, err)
		}
		var connects []float64
		for _, f := range families {
			if f.GetName() == "port_runner_kafka_connects_total" {
				for _, s := range f.GetMetric() {
					connects = append(connects, s.GetCounter().GetValue())
				}
			}
		}
		if len(connects) != 1 || connects[0] < 1 {
			t.Fatalf("client %d: port_runner_kafka_connects_total %v, want the newest client's one series", i, connects)
		}
	}
}

package agent

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"
)

// kafkaMetrics is the consumer's Kafka client metrics (port_runner_kafka_*). A kprom
// Metrics serves one client: a second one adds its series beside the first's, which it
// never lets go, and a scrape then fails on the duplicates. The consumer makes a new client
// when it rejoins the group under a new member id (README "Delivery"), so each client gets a
// Metrics of its own, and the newest is what /metrics shows (its counters start again, as
// after a restart).
type kafkaMetrics struct {
	newest atomic.Pointer[kprom.Metrics]
}

// hooks are a new client's: its own Metrics, shown once the client has been made.
func (k *kafkaMetrics) hooks() []kgo.Hook {
	m := kprom.NewMetrics("port_runner", kprom.Subsystem("kafka"), kprom.Registry(nil)) // registers nothing itself
	return []kgo.Hook{clientMetrics{Metrics: m, shown: &k.newest}}
}

// clientMetrics is one client's Metrics, with every hook of kprom's; it is shown once kprom
// has made its series (OnNewClient), so a scrape never reads them half made.
type clientMetrics struct {
	*kprom.Metrics
	shown *atomic.Pointer[kprom.Metrics]
}

func (m clientMetrics) OnNewClient(cl *kgo.Client) {
	m.Metrics.OnNewClient(cl)
	m.shown.Store(m.Metrics)
}

// Describe describes nothing: the collector is attached unchecked (metrics.Attach).
func (k *kafkaMetrics) Describe(chan<- *prometheus.Desc) {}

func (k *kafkaMetrics) Collect(ch chan<- prometheus.Metric) {
	if m := k.newest.Load(); m != nil {
		m.Collect(ch)
	}
}

//go:build docker

package harness

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tckafka "github.com/testcontainers/testcontainers-go/modules/kafka"
)

// DefaultContainerImage is the image used for PORT_RUNNER_TEST_DOCKER=1
// unless PORT_RUNNER_TEST_KAFKA_IMAGE names another one. confluent-local 8.x
// is Apache Kafka 4.x (KRaft, KIP-848 consumer groups).
const DefaultContainerImage = "confluentinc/confluent-local:8.0.0"

// newContainer starts a Kafka container with testcontainers-go; it is
// terminated at t's cleanup. Needs a Docker engine.
func newContainer(t testing.TB) *Broker {
	t.Helper()
	img := os.Getenv("PORT_RUNNER_TEST_KAFKA_IMAGE")
	if img == "" {
		img = DefaultContainerImage
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	kc, err := tckafka.Run(ctx, img, tckafka.WithClusterID("port-runner-harness"))
	t.Cleanup(func() {
		if err := testcontainers.TerminateContainer(kc); err != nil {
			t.Logf("harness: terminating kafka container: %v", err)
		}
	})
	if err != nil {
		t.Fatalf("harness: starting kafka container %s: %v", img, err)
	}
	brokers, err := kc.Brokers(ctx)
	if err != nil {
		t.Fatalf("harness: kafka container brokers: %v", err)
	}
	return &Broker{Brokers: brokers, Kind: KindContainer}
}

package harness_test

import (
	"context"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/port-runner/port-runner/test/harness"
)

// A client seeded with the proxy's brokers learns only the proxy's addresses (so it can be
// cut off), is cut off while Cut holds, and talks again after Restore.
func TestKafkaProxyCutsOneClientOff(t *testing.T) {
	b := harness.NewBroker(t)
	if len(b.Opts) > 0 {
		t.Skip("the proxy relays PLAINTEXT")
	}
	topic := b.Topic(t, 1)
	proxy := harness.NewKafkaProxy(t, b.Brokers)
	cl, err := kgo.NewClient(kgo.SeedBrokers(proxy.Brokers()...), kgo.RequestTimeoutOverhead(time.Second),
		kgo.RetryTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	metadata := func(timeout time.Duration) (*kmsg.MetadataResponse, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
		return req.RequestWith(ctx, cl)
	}

	resp, err := metadata(30 * time.Second)
	if err != nil {
		t.Fatalf("metadata through the proxy: %v", err)
	}
	for _, br := range resp.Brokers {
		addr := net.JoinHostPort(br.Host, strconv.Itoa(int(br.Port)))
		if slices.Contains(b.Brokers, addr) || br.Host != "127.0.0.1" {
			t.Errorf("broker %d advertised as %s: not the proxy's", br.NodeID, addr)
		}
	}

	proxy.Cut()
	if _, err := metadata(3 * time.Second); err == nil {
		t.Fatal("a request went through a cut proxy")
	}
	proxy.Restore()
	if _, err := metadata(30 * time.Second); err != nil {
		t.Fatalf("metadata after Restore: %v", err)
	}
}

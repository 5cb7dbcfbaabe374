package agent

import (
	"time"

	"github.com/port-runner/port-runner/internal/config"
)

// Option changes one of the agent's timings from its production value. Deployments use
// none: the tests pass them (through test/harness) to see in seconds what takes a minute.
type Option func(*timings)

// timings are the values Options change.
type timings struct {
	closingBudget  time.Duration // how long one run's closing (or lookup) is retried
	lagInterval    time.Duration // how often consumer_lag is read from the broker; 0: the collector's 5s
	plaintextKafka bool          // Kafka credentials from Port are used without TLS
}

// closeGrace is how long closing requests may take once the runs still going at shutdown
// were cancelled: what a cancelled command may take to die, then its closing; the end of
// the lease bound (config.LeaseBound) less its margin. An unreachable Port must not hold the
// shutdown longer (a run left unclosed is not committed, so it is not lost).
func (t timings) closeGrace() time.Duration { return config.KillGrace + t.closingBudget }

func defaultTimings() timings {
	return timings{closingBudget: DefaultClosingBudget}
}

// WithClosingBudget retries one run's closing for d instead of DefaultClosingBudget (which
// the leases' bound counts on: README "Delivery").
func WithClosingBudget(d time.Duration) Option {
	return func(t *timings) {
		if d > 0 {
			t.closingBudget = d
		}
	}
}

// WithLagInterval reads consumer_lag from the broker every d instead of every 5s.
func WithLagInterval(d time.Duration) Option {
	return func(t *timings) { t.lagInterval = d }
}

// WithPlaintextKafkaFromPort uses the Kafka credentials Port gives without TLS: an
// in-process test broker has none (Port's Kafka is always SASL_SSL).
func WithPlaintextKafkaFromPort() Option {
	return func(t *timings) { t.plaintextKafka = true }
}

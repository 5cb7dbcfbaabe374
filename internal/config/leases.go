package config

import (
	"time"

	"github.com/port-runner/port-runner/executor"
)

// Delivery timings the leases are made of (README "Delivery").
const (
	// KillGrace is the time between SIGTERM and SIGKILL for a cancelled command: the
	// executor's, which kills it.
	KillGrace = executor.DefaultKillGrace
	// ClosingBudget is how long one run's closing request is retried.
	ClosingBudget = 60 * time.Second
	// LeaseMargin is in a lease's bound for requests under way and clocks' differing rates.
	LeaseMargin = 10 * time.Second
	// MinSessionTimeout and MaxSessionTimeout are Kafka's defaults for what a broker
	// accepts (group.min.session.timeout.ms, group.max.session.timeout.ms).
	MinSessionTimeout = 6 * time.Second
	MaxSessionTimeout = 30 * time.Minute
)

// Fence is how long a replica that cannot confirm its membership of the group may still
// have commands running: it stops them and stops renewing their shims at half of it, and
// the shims kill what is left at the end of it. It is shorter than the session timeout, so
// they are dead before any other replica may take their runs over.
func (k Kafka) Fence() time.Duration { return k.SessionTimeout.D() * 2 / 3 }

// Drain is how long after leaving the group (SIGTERM) a replica may still act on the runs it
// holds: the shutdown timeout, the kill grace and the closing budget.
func (c *Config) Drain(closingBudget time.Duration) time.Duration {
	return c.Executor.ShutdownTimeout.D() + KillGrace + closingBudget
}

// LeaseBound is how long other replicas wait, after a replica left the group, before they
// decide a run it holds: its drain, then its fence (a replica frozen in its drain has its
// commands dead by then) and the margin.
func (c *Config) LeaseBound(closingBudget time.Duration) time.Duration {
	return c.Drain(closingBudget) + c.Kafka.Fence() + LeaseMargin
}

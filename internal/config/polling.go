package config

import "time"

// Transports (Config.Transport): "kafka" reads the org's runs topic; "polling" claims runs
// from Port's claim-and-acknowledge API (README "Without Kafka: polling"), and the kafka:
// section is then unused.
const (
	TransportKafka   = "kafka"
	TransportPolling = "polling"
)

// Polling paces the claims of transport: polling.
type Polling struct {
	// Interval is the longest wait between two claims while Port has nothing pending: an
	// idle replica's claims back off from 1s up to it. A freed slot claims at once.
	Interval Duration `yaml:"interval"`
	// VisibilityTimeout is how long a claimed run stays hidden from every other claimer
	// unless this replica acknowledges it (which it does right before the run starts).
	VisibilityTimeout Duration `yaml:"visibilityTimeout"`
	// SweepInterval is how often a replica lists the runs Port shows in progress to close
	// those whose holder's lease ended (a replica that died while running them).
	SweepInterval Duration `yaml:"sweepInterval"`
}

// Polling bounds: Port's documented range for visibilityTimeoutMs, and an idle interval
// between a second and five minutes.
const (
	MinPollInterval   = time.Second
	MaxPollInterval   = 5 * time.Minute
	MaxSweepInterval  = time.Hour
	MinVisibility     = time.Second
	MaxVisibility     = 10 * time.Minute
	defaultVisibility = 60 * time.Second
)

// Polls reports whether runs come from Port's claim API rather than Kafka.
func (c *Config) Polls() bool { return c.Transport == TransportPolling }

// applyTransportDefaults fills transport: and polling: (part of applyDefaults).
func (c *Config) applyTransportDefaults() {
	if c.Transport == "" {
		c.Transport = TransportKafka
	}
	c.Polling.applyDefaults()
}

func (p *Polling) applyDefaults() {
	if p.Interval == 0 {
		p.Interval = Duration(10 * time.Second)
	}
	if p.VisibilityTimeout == 0 {
		p.VisibilityTimeout = Duration(defaultVisibility)
	}
	if p.SweepInterval == 0 {
		p.SweepInterval = Duration(time.Minute)
	}
}

// validateTransport checks the way in: kafka: with transport kafka, polling: with polling.
func (c *Config) validateTransport(add func(error)) {
	switch c.Transport {
	case TransportKafka:
		validateKafka(c.Kafka, add)
	case TransportPolling:
		validatePolling(c.Polling, add)
	default:
		add(problem("transport", "must be kafka or polling, got %q", c.Transport))
	}
}

func validatePolling(p Polling, add func(error)) {
	if d := p.Interval.D(); d < MinPollInterval || d > MaxPollInterval {
		add(problem("polling.interval", "must be between %s and %s, got %s", MinPollInterval, MaxPollInterval, d))
	}
	if d := p.VisibilityTimeout.D(); d < MinVisibility || d > MaxVisibility {
		add(problem("polling.visibilityTimeout", "must be between %s and %s (Port's range), got %s", MinVisibility, MaxVisibility, d))
	}
	if d := p.SweepInterval.D(); d < time.Second || d > MaxSweepInterval {
		add(problem("polling.sweepInterval", "must be between 1s and %s, got %s", MaxSweepInterval, d))
	}
}

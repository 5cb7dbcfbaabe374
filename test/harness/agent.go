package harness

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/port-runner/port-runner/internal/agent"
	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/metrics"
)

// readyTimeout bounds the waits for an agent's start: joining a group on a real broker
// takes seconds, never this long.
const readyTimeout = 60 * time.Second

// Agent is an agent assembled from a config as cmd/port-runner assembles it, running in the
// test's process until Stop or the end of the test.
type Agent struct {
	*agent.Agent
	Metrics *metrics.Metrics
	// Logs holds every line the agent logged, debug included (the test log gets them too).
	Logs *observer.ObservedLogs

	cancel     context.CancelFunc
	done       chan struct{}
	err        error // Run's, once done is closed
	mu         sync.Mutex
	observed   bool   // the test read Run's error: the cleanup does not report it
	metricsURL string // once found in the log
}

// AgentOption changes how Start runs an agent.
type AgentOption func(*agentOptions)

type agentOptions struct {
	name       string
	level      zapcore.Level
	ownMetrics bool
	kafkaOpts  []kgo.Opt // the broker's unless KafkaOpts
	agent      []agent.Option
	shim       []string // agent.Deps.Shim: none unless Shim
	shimKind   string
}

// Shim runs the agent's commands under the exec shim prefix of kind (agent.Deps.Shim and
// ShimKind), as cmd/port-runner does with the shim beside it; without it the in-process
// agent runs them in plain process groups.
func Shim(prefix []string, kind string) AgentOption {
	return func(o *agentOptions) { o.shim, o.shimKind = prefix, kind }
}

// Named names the agent's logger (replicas of one test).
func Named(name string) AgentOption { return func(o *agentOptions) { o.name = name } }

// TestLogLevel is the lowest level of the lines that reach the test's log (default debug);
// Logs keeps every line anyway.
func TestLogLevel(l zapcore.Level) AgentOption { return func(o *agentOptions) { o.level = l } }

// OwnMetrics gives the agent a registry of its own instead of the Env's shared one.
func OwnMetrics() AgentOption { return func(o *agentOptions) { o.ownMetrics = true } }

// KafkaOpts are the only Kafka client options the agent gets besides its config's, instead
// of the broker's (an agent that must connect by its config alone, or with Port's
// credentials).
func KafkaOpts(opts ...kgo.Opt) AgentOption {
	return func(o *agentOptions) { o.kafkaOpts = opts }
}

// With passes agent options (shorter timings) to agent.New.
func With(opts ...agent.Option) AgentOption {
	return func(o *agentOptions) { o.agent = append(o.agent, opts...) }
}

// Start assembles an agent from cfg and runs it. The test's cleanup stops it and fails the
// test if Run returned an error the test did not read (Stop, Err).
func (e *Env) Start(t testing.TB, cfg *config.Config, opts ...AgentOption) *Agent {
	t.Helper()
	o := e.agentOptions(opts)
	a, err := e.build(t, cfg, o)
	if err != nil {
		t.Fatalf("harness: agent: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel, a.done = cancel, make(chan struct{})
	go func() {
		defer close(a.done)
		a.err = a.Run(ctx, context.Background())
	}()
	t.Cleanup(func() {
		a.Cancel()
		<-a.done
		a.mu.Lock()
		defer a.mu.Unlock()
		if !a.observed && a.err != nil {
			t.Errorf("harness: agent %s: Run: %v", o.name, a.err)
		}
	})
	return a
}

// New assembles the agent Start would run, without running it: its error is agent.New's.
func (e *Env) New(t testing.TB, cfg *config.Config, opts ...AgentOption) (*Agent, error) {
	t.Helper()
	return e.build(t, cfg, e.agentOptions(opts))
}

func (e *Env) agentOptions(opts []AgentOption) agentOptions {
	o := agentOptions{level: zapcore.DebugLevel, kafkaOpts: e.Broker.Opts}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

func (e *Env) build(t testing.TB, cfg *config.Config, o agentOptions) (*Agent, error) {
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(zapcore.NewTee(core, zaptest.NewLogger(t, zaptest.Level(o.level)).Core()))
	if o.name != "" {
		log = log.Named(o.name)
	}
	m := e.Metrics
	if o.ownMetrics {
		m = metrics.New()
	}
	a, err := agent.New(cfg, agent.Deps{Logger: log, Metrics: m, KafkaOpts: o.kafkaOpts, Shim: o.shim, ShimKind: o.shimKind}, o.agent...)
	if err != nil {
		return nil, err
	}
	return &Agent{Agent: a, Metrics: m, Logs: logs}, nil
}

// Cancel is the agent's first signal: it stops taking runs and drains (see agent.Run).
func (a *Agent) Cancel() { a.cancel() }

// Done is closed once Run has returned.
func (a *Agent) Done() <-chan struct{} { return a.done }

// Err is Run's error, once Done is closed.
func (a *Agent) Err() error {
	<-a.done
	a.mu.Lock()
	defer a.mu.Unlock()
	a.observed = true
	return a.err
}

// Stop cancels the agent, waits for Run to return and returns its error.
func (a *Agent) Stop() error {
	a.Cancel()
	return a.Err()
}

// WaitReady waits until the agent has joined its group and holds a Port token.
func (a *Agent) WaitReady(t testing.TB) {
	t.Helper()
	waitcond.For(t, "the agent to be ready", readyTimeout, func() bool { return a.Ready() == nil })
}

// WaitSettled waits until every agent is ready and the group is stable with them as its
// members, each owning partitions: a run produced afterwards is a fresh run to all of them.
func (e *Env) WaitSettled(t testing.TB, agents ...*Agent) {
	t.Helper()
	adm := e.Broker.admin(t)
	defer adm.Close()
	waitcond.For(t, "every agent ready and the group settled", readyTimeout, func() bool {
		for _, a := range agents {
			if a.Ready() != nil {
				return false
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		groups, err := adm.DescribeGroups(ctx, e.Group)
		if err != nil {
			return false
		}
		g := groups[e.Group]
		if g.Err != nil || g.State != "Stable" || len(g.Members) != len(agents) {
			return false
		}
		for _, m := range g.Members {
			if as, ok := m.Assigned.AsConsumer(); !ok || len(as.Topics) == 0 {
				return false
			}
		}
		return true
	})
}

// MetricsURL is the base URL of the agent's metrics server (/metrics, /status, /readyz),
// once it serves: the address it logs, as a user reads it.
func (a *Agent) MetricsURL(t testing.TB) string {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.metricsURL != "" {
		return a.metricsURL
	}
	var addr string
	waitcond.For(t, "the agent to serve its metrics", readyTimeout, func() bool {
		for _, e := range a.Logs.FilterMessage("serving metrics server").All() {
			if s, ok := e.ContextMap()["addr"].(string); ok {
				addr = s
				return true
			}
		}
		return false
	})
	a.metricsURL = "http://" + addr
	return a.metricsURL
}

// LogText is every line the agent logged with its fields, for asserting what never appears.
func (a *Agent) LogText() string {
	var b strings.Builder
	for _, e := range a.Logs.All() {
		b.WriteString(e.Message)
		for k, v := range e.ContextMap() {
			fmt.Fprintf(&b, " %s=%v", k, v)
		}
		b.WriteString("\n")
	}
	return b.String()
}

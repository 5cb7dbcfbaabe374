// Package agent assembles the pipeline (consumer -> decode -> pool -> executor -> reporter ->
// Port) from a config. cmd/port-runner, the demo and the end-to-end tests all run this one
// assembly, so what the tests prove is what users run.
package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/port-runner/port-runner/consumer"
	"github.com/port-runner/port-runner/executor"
	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/portapi"
	"github.com/port-runner/port-runner/internal/portproxy"
	"github.com/port-runner/port-runner/internal/runmsg"
	"github.com/port-runner/port-runner/metrics"
	"github.com/port-runner/port-runner/polling"
	"github.com/port-runner/port-runner/reporter"
)

// Deps are what the caller may supply instead of the defaults (tests, the demo).
type Deps struct {
	Logger    *zap.Logger
	Metrics   *metrics.Metrics
	KafkaOpts []kgo.Opt // appended after the config's options
	// Shim is the exec shim's command prefix (executor.ShimFor), so a command's children die
	// with the agent too; nil: no shim. ShimKind says which one it is (/status, the log).
	Shim     []string
	ShimKind string
	// ConfigPath is the config file: the sandbox keeps it from every command.
	ConfigPath string
	// Reaper is the agent as a child subreaper (executor.NewReaper), given to every run;
	// nil: none (tests whose process starts children of its own).
	Reaper *executor.Reaper
}

// Agent is one replica.
type Agent struct {
	// renewals renews every command's lease with its shim, from one goroutine (renew).
	renewals *executor.Renewals
	cfg      *config.Config
	log      *zap.Logger
	metrics  *metrics.Metrics
	api      *portapi.Client
	decoder  *runmsg.Decoder
	pool     *executor.Pool
	reporter *reporter.Reporter
	consumer *consumer.Consumer // built by Run once Port and the brokers answered (join)
	// member is consumer once built, for Ready, which the tests and probes may call while Run
	// is still joining.
	member atomic.Pointer[consumer.Consumer]
	// source claims runs from Port's API instead (transport: polling; polling.go): no
	// consumer is built then.
	source   *polling.Source
	proxy    *portproxy.Proxy
	proxyURL string // PORT_API_URL for commands; set in Run before any run starts
	actions  map[string]*action
	// nodeActions are the actions with a workflowNode, by name: the order node runs are
	// matched in (route.go).
	nodeActions []*action
	seen        *seenRuns
	watch       *portWatch // stops the commands of runs Port ended (cancel.go)
	lives       *lives     // every run held here, each in its named phase (lifecycle.go)
	deps        Deps
	timings     timings // production values unless an Option changed them
	// fatal carries the consumer's unrecoverable error to Run, which then stops as on SIGTERM.
	fatal chan error
	// stopping is set from the first signal or a fatal error on: /readyz answers 503.
	stopping atomic.Bool
	// Observability: franz-go's client metrics, and the options of the lag collector's own
	// Kafka client.
	kafkaMetrics kafkaMetrics
	lagOpts      []kgo.Opt
	kafka        config.Kafka // the consumer's, brokers and group from Port included
	consumerOpts []kgo.Opt    // the consumer's client options (kafkaClients)
	kafkaLogs    atomic.Bool  // franz-go's warnings are logged (after the start check)
	// iso is how commands are confined (isolation.go); runs is where their directories go
	// while Run or Try runs (opened there: it sweeps what a dead agent left).
	iso  *isolation
	runs *executor.RunsDir
	// peek decodes without verifying, only to tell whether an unsigned message was for a
	// configured action (setup.go); unsignedSeen: the first one was logged as an error.
	peek         *runmsg.Decoder
	unsignedSeen atomic.Bool
}

// New builds every stage from a validated config. Nothing connects until Run.
func New(cfg *config.Config, deps Deps, opts ...Option) (*Agent, error) {
	if deps.Logger == nil {
		deps.Logger = zap.NewNop()
	}
	if deps.Metrics == nil {
		deps.Metrics = metrics.New()
	}
	if cfg.Metrics.Pprof {
		deps.Metrics.Pprof = true
	}
	a := &Agent{cfg: cfg, log: deps.Logger, metrics: deps.Metrics, deps: deps, timings: defaultTimings(), seen: newSeenRuns(10000), fatal: make(chan error, 1)}
	for _, o := range opts {
		o(&a.timings)
	}
	a.lives = newLives(func(d int) { deps.Metrics.RunsInFlight.Add(float64(d)) })

	var err error
	if a.api, a.proxy, err = newPortAPI(cfg, deps); err != nil {
		return nil, err
	}
	a.watch = newPortWatch(a.api, cfg.Port.RunStatusInterval.D(), deps.Logger)
	if a.decoder, a.peek, err = newDecoders(cfg); err != nil {
		return nil, err
	}
	if a.iso, err = newIsolation(cfg, deps); err != nil {
		return nil, err
	}
	if a.actions, a.pool, err = newActions(cfg, deps.Shim, a.iso); err != nil {
		return nil, err
	}
	a.nodeActions = nodeActionsByName(a.actions)

	a.reporter = reporter.New(a.api, reporter.Options{
		FlushInterval:  cfg.Logs.FlushInterval.D(),
		MaxBatchBytes:  int(cfg.Logs.MaxBatchBytes),
		MaxBytesPerRun: int(cfg.Logs.MaxBytesPerRun),
		Mask:           append(slices.Clip(cfg.Security.Mask), cfg.AgentSecrets()...), // always the agent's own
		Logger:         deps.Logger,
		OnLogBytes:     func(n int) { deps.Metrics.LogBytes.Add(float64(n)) },
		OnDropped:      func(n int) { deps.Metrics.LogBytesDropped.Add(float64(n)) },
		OnLine:         a.lives.line,
		OnRefused:      a.watch.refused,
	})

	if cfg.Polls() {
		a.source = a.newSource()
	}
	return a, nil
}

// newPortAPI is the agent's Port client and the proxy that forwards commands' requests
// through it.
func newPortAPI(cfg *config.Config, deps Deps) (*portapi.Client, *portproxy.Proxy, error) {
	api, err := portapi.New(portapi.Options{
		BaseURL:           cfg.Port.BaseURL,
		ClientID:          cfg.Port.ClientID,
		ClientSecret:      cfg.Port.ClientSecret,
		RequestsPerSecond: cfg.Port.RequestsPerSecond,
		CAFile:            cfg.Port.CAFile,
		Logger:            deps.Logger,
		Observe:           deps.Metrics.ObservePortRequest,
		OnBudget:          deps.Metrics.ObservePortBudget,
		OnWait:            deps.Metrics.ObservePortWait,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("port api client: %w", err)
	}
	proxy := portproxy.New(func(ctx context.Context, rq portproxy.Request) (portproxy.Response, error) {
		resp, err := api.Forward(ctx, portapi.ProxyRequest{
			Method: rq.Method, Path: rq.Path, Query: rq.Query,
			ContentType: rq.ContentType, Body: rq.Body, RunID: rq.RunID,
		})
		return portproxy.Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: resp.Body}, err
	}, portproxy.Options{
		Logger: deps.Logger, BindToProcess: cfg.Security.RunIsolation == "process",
		// Commands' requests never take more than half of the replica's budget, nor one run
		// more than a quarter: the agent's own log batches and closings keep the rest.
		Limits: portproxy.Limits{
			RequestsPerSecond:    cfg.Port.RequestsPerSecond / 2,
			RunRequestsPerSecond: cfg.Port.RequestsPerSecond / 4,
		},
	})
	if cfg.Security.RunIsolation == "process" && !portproxy.ProcessBindingSupported() {
		deps.Logger.Warn("security.runIsolation: process needs Linux /proc; run tokens are bound to their run only")
	}
	return api, proxy, nil
}

// newDecoders is the run message decoder and, when signatures are verified, peek: the same
// selectors without verifying, only to tell an unsigned message for a configured action.
func newDecoders(cfg *config.Config) (decoder, peek *runmsg.Decoder, err error) {
	selectors := runmsg.Selectors{
		RunID: cfg.Message.RunID, Action: cfg.Message.Action,
		Properties: cfg.Message.Properties, Entity: cfg.Message.Entity,
	}
	decoder, err = runmsg.NewDecoder(runmsg.Options{
		Selectors:       selectors,
		Secret:          cfg.Port.ClientSecret,
		VerifySignature: cfg.Security.Verify(),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("message decoder: %w", err)
	}
	if cfg.Security.Verify() {
		if peek, err = runmsg.NewDecoder(runmsg.Options{Selectors: selectors}); err != nil {
			return nil, nil, fmt.Errorf("unsigned-message decoder: %w", err)
		}
	}
	return decoder, peek, nil
}

// newActions is every configured action, ready to start commands, and the pool that bounds
// them (overall and per action).
func newActions(cfg *config.Config, shim []string, iso *isolation) (map[string]*action, *executor.Pool, error) {
	pass, err := passedEnv(cfg, os.LookupEnv)
	if err != nil {
		return nil, nil, err
	}
	keys, err := cfg.Security.ClientSideKeys()
	if err != nil {
		return nil, nil, err
	}
	perAction := map[string]int{}
	actions := map[string]*action{}
	for name, ac := range cfg.Actions {
		perAction[name] = ac.MaxConcurrent
		act, err := newAction(name, ac, shim)
		if err != nil {
			return nil, nil, err
		}
		act.iso = iso.actions[name]
		act.pass = pass
		for n, v := range pass {
			act.passSecrets = append(act.passSecrets, envSecrets(n, v)...)
		}
		act.secretKey, act.keys = cfg.Port.ClientSecret, keys
		actions[name] = act
	}
	return actions, executor.NewPool(cfg.Executor.MaxConcurrent, perAction), nil
}

// Ready is nil when the member has joined its group (transport: polling: at once) and holds
// a valid Port token.
func (a *Agent) Ready() error {
	if a.stopping.Load() {
		return errors.New("stopping")
	}
	if c := a.member.Load(); a.source == nil && (c == nil || !c.Joined()) {
		return errors.New("consumer group not joined")
	}
	if !a.api.TokenValid() {
		// An idle agent's token simply expired: fetch one rather than report a replica
		// that would work fine as not ready.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if _, err := a.api.Token(ctx); err != nil {
			return fmt.Errorf("no valid Port token: %w", err)
		}
	}
	return nil
}

// Run is the agent until ctx ends (the first SIGTERM): it joins the group only once Port
// gave it a token and the brokers answered. Then it stops fetching and leaves the group at
// once, its runs going on under their leases: running commands get
// executor.shutdownTimeout, then (or when kill ends: a second signal) are cancelled, and
// every run it took is closed in Port within the kill grace and the closing budget.
func (a *Agent) Run(parent, kill context.Context) error {
	// ctx ends at the first signal, or when the consumer hits an error it cannot recover
	// from: either way the agent drains within shutdownTimeout and stops.
	ctx, stopRun := context.WithCancelCause(parent)
	var fatalWatch sync.WaitGroup
	defer func() { stopRun(nil); fatalWatch.Wait() }()
	fatalWatch.Go(func() {
		select {
		case err := <-a.fatal:
			a.log.Error("kafka: unrecoverable error; stopping", zap.Error(err))
			stopRun(err)
		case <-ctx.Done():
		}
		a.stopping.Store(true)
	})
	// Run directories (opened before the group is joined: it sweeps what agents of this
	// uid that are gone left there, decrypted secret inputs among it), closed last.
	closeRuns, err := a.openRuns()
	if err != nil {
		return err
	}
	defer closeRuns()
	defer a.renew()() // past every run: consumer.Run and poll return once all have ended
	if a.source != nil {
		return a.poll(ctx, kill)
	}
	if err := a.join(ctx); err != nil {
		return err
	}
	stopServers, err := a.startServers()
	if err != nil {
		a.consumer.Close()
		return err
	}
	defer stopServers()
	work, report, drained := a.drain(ctx, kill)
	err = a.consumer.Run(ctx, work, func(wctx context.Context, t *consumer.Ticket) {
		a.handle(ctx, wctx, report, t)
	})
	drained()
	return err
}

// join checks Port (a token; the Kafka credentials when it gives them) and the brokers, and
// only then builds the consumer, which joins the group: a replica that cannot work never
// takes partitions from one that can.
func (a *Agent) join(ctx context.Context) error {
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := a.api.Token(startCtx); err != nil {
		return fmt.Errorf("port api: %w", err)
	}
	k := a.cfg.Kafka
	if k.FromPort() {
		cr, err := a.api.KafkaCredentials(startCtx)
		if err != nil {
			return fmt.Errorf("kafka.brokers not configured, and Port did not give Kafka credentials: %w", err)
		}
		k = kafkaFromPort(a.cfg.Kafka, cr, a.timings.plaintextKafka)
		a.reporter.MaskAlso(cr.Password) // the agent's own credential, as kafka.sasl.password is
		a.log.Info("using Kafka credentials from Port", zap.Strings("brokers", cr.Brokers), zap.String("group", k.Group))
	}
	if err := a.kafkaClients(k); err != nil {
		return err
	}
	if err := consumer.Ping(startCtx, a.lagOpts, k.Topic); err != nil {
		return err
	}
	a.kafkaLogs.Store(true)
	return a.newConsumer()
}

// startServers starts what serves while the agent runs: /metrics and the probes (through
// the drain: /readyz says "stopping" from the first signal on), the broker lag collector,
// and the Port API proxy for commands (loopback only, up until every run has ended: their
// tokens are revoked by then). stop ends them, the proxy first.
func (a *Agent) startServers() (stop func(), err error) {
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	stops = append(stops, a.metrics.SetSource(source{a: a, ready: a.Ready}))
	if a.source == nil { // the Kafka client's metrics and the broker's lag
		stops = append(stops, a.metrics.Attach("kafka", metrics.Renamed(&a.kafkaMetrics, kpromGauges())))
		stopLag, err := a.startLag()
		if err != nil {
			stop()
			return nil, err
		}
		stops = append(stops, stopLag)
	}
	if addr := a.cfg.Metrics.Addr; addr != "-" { // "-": no server (the demo)
		stopMetrics, err := a.serve("metrics server", func(sctx context.Context) (string, func() error, error) {
			return a.metrics.Serve(sctx, addr, a.Ready)
		})
		if err != nil {
			stop()
			return nil, err
		}
		stops = append(stops, stopMetrics)
	}
	stopProxy, err := a.serve("port api proxy", func(sctx context.Context) (string, func() error, error) {
		url, wait, err := a.proxy.Serve(sctx, "127.0.0.1:0")
		a.proxyURL = url
		return url, wait, err
	})
	if err != nil {
		stop()
		return nil, err
	}
	stops = append(stops, stopProxy, a.startWatch())
	return stop, nil
}

// drain is the shutdown's schedule. work ends shutdownTimeout after ctx (the first signal),
// or at once when kill ends (a second signal): running commands are cancelled. report, what
// the runs' Port requests live on, ends the kill grace and the closing budget after that:
// within the bound of the leases this replica holds once it left the group. drained ends
// both and waits for the schedule.
func (a *Agent) drain(ctx, kill context.Context) (work, report context.Context, drained func()) {
	work, cancelWork := context.WithCancelCause(kill)
	report, cancelReport := context.WithCancel(context.WithoutCancel(ctx))
	var schedule sync.WaitGroup
	stopped := "partitions handed over" // what a consuming replica gives up at the first signal
	if a.source != nil {
		stopped = "no more claims"
	}
	schedule.Go(func() {
		select {
		case <-ctx.Done():
		case <-work.Done():
		}
		// Read apart from the select: a way in with nothing left to do (an idle polling
		// replica) calls drained at once, and then both are done.
		if ctx.Err() != nil {
			a.log.Info("stopping: no new runs; "+stopped+"; waiting for running commands",
				zap.Duration("shutdownTimeout", a.cfg.Executor.ShutdownTimeout.D()), a.lives.phases())
		}
		t := time.NewTimer(a.cfg.Executor.ShutdownTimeout.D())
		defer t.Stop()
		select {
		case <-t.C:
		case <-work.Done():
		}
		if n := a.lives.count(phaseRunning); n > 0 {
			a.log.Info("stopping: cancelling the commands still running", a.lives.phases())
		}
		cancelWork(executor.ErrShutdown)
		g := time.NewTimer(a.timings.closeGrace())
		defer g.Stop()
		select {
		case <-g.C:
		case <-report.Done():
		}
		cancelReport()
	})
	return work, report, func() {
		cancelWork(executor.ErrShutdown)
		cancelReport()
		schedule.Wait()
	}
}

// serve starts one of the agent's servers (it serves until the returned stop is called) and
// returns stop, which ends it, waits for it and logs how it ended.
func (a *Agent) serve(name string, start func(context.Context) (string, func() error, error)) (stop func(), err error) {
	sctx, cancel := context.WithCancel(context.Background())
	addr, wait, err := start(sctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	a.log.Info("serving "+name, zap.String("addr", addr))
	return func() {
		cancel()
		if err := wait(); err != nil {
			a.log.Warn(name+" stopped with an error", zap.Error(err))
		}
	}, nil
}

// startLag runs the broker-side lag collector, on a Kafka client of its own, until stop.
func (a *Agent) startLag() (stop func(), err error) {
	cl, err := kgo.NewClient(a.lagOpts...)
	if err != nil {
		return nil, fmt.Errorf("kafka client for lag: %w", err)
	}
	c := consumer.NewLagCollector(consumer.LagOptions{
		Client: cl, Topic: a.kafka.Topic, Group: a.kafka.Group, StartOffset: a.kafka.StartOffset,
		Owned: a.ownedUnstarted, Interval: a.timings.lagInterval, Logger: a.log,
		MaxDecompressBatchBytes: int(a.kafka.MaxDecompressBatchBytes),
	})
	detach := a.metrics.Attach("lag", c)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { c.Run(ctx) })
	return func() {
		cancel()
		wg.Wait()
		detach()
		cl.Close()
	}, nil
}

// ownedUnstarted is the consumer's view of its partitions, as the lag collector reads it.
func (a *Agent) ownedUnstarted() map[int32]consumer.Unstarted {
	out := map[int32]consumer.Unstarted{}
	for p, u := range a.consumer.Unstarted() {
		out[p] = consumer.Unstarted{Offset: u.Offset, Timestamp: u.Timestamp}
	}
	return out
}

// openRuns takes this agent's place for run directories, first removing what agents of its
// uid that are gone left there (decrypted secret inputs among it), until closeRuns.
func (a *Agent) openRuns() (closeRuns func(), err error) {
	a.iso.logStart(a.log)
	runs, swept, err := executor.OpenRunsDir(a.iso.runsRoot, a.iso.base.UIDs != nil)
	if err != nil {
		if a.cfg.Executor.RunsDir == "" { // the default's: name where it came from
			return nil, fmt.Errorf("run directories (executor.runsDir unset: %s, under $RUNTIME_DIRECTORY, else $TMPDIR, else /dev/shm): %w", a.iso.runsRoot, err)
		}
		return nil, fmt.Errorf("executor.runsDir: %w", err)
	}
	if len(swept.Sticky) > 0 {
		// Possibly not the agent's own (as root, CAP_FOWNER): an operator should know.
		a.log.Info("made world-writable directories around the run directories sticky, so no uid replaces another's entries",
			zap.Strings("dirs", swept.Sticky))
	}
	if swept.Removed > 0 {
		a.log.Info("removed the run directories of stopped agents", zap.Int("agents", swept.Removed), zap.String("runsDir", a.iso.runsRoot))
	}
	if swept.Reason != nil {
		// What stayed may hold decrypted inputs. Only the system's reason: the path inside a
		// directory is a name a command chose.
		a.log.Warn("run directories of stopped agents not removed: the next agent of this uid to start tries again",
			zap.String("runsDir", a.iso.runsRoot), zap.Strings("dirs", swept.Left), zap.NamedError("reason", cause(swept.Reason)))
	}
	a.runs = runs
	return func() {
		if err := runs.Close(); err != nil {
			// Only the system's reason: the path inside it is a name a command chose.
			a.log.Warn("the agent's run directory not removed: the next agent of this uid to start tries again",
				zap.String("runsDir", runs.Root()), zap.NamedError("reason", cause(err)))
		}
	}, nil
}

// Isolation says how an agent of cfg would confine its commands here, in a few lines
// (`validate`), or why it would refuse to start.
func Isolation(cfg *config.Config, deps Deps) (string, error) {
	iso, err := newIsolation(cfg, deps)
	if err != nil {
		return "", err
	}
	return iso.summary(), nil
}

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/port-runner/port-runner/executor"
	"github.com/port-runner/port-runner/internal/agent"
	"github.com/port-runner/port-runner/internal/sandbox"
	"github.com/port-runner/port-runner/internal/shim"
	"github.com/port-runner/port-runner/metrics"
)

func runCommand() command {
	return command{
		name:     "run",
		synopsis: "--config FILE",
		summary:  "The agent: executes the configured actions' runs from Kafka (transport: polling: Port's claim API) and reports them to Port.",
		detail: "A first SIGTERM or SIGINT drains (running commands get executor.shutdownTimeout),\n" +
			"a second cancels them. Exit 0 after a drain, 1 on a runtime failure (the brokers or\n" +
			"Port refusing it, a fatal Kafka error), 2 on a bad config. Logs are JSON on stderr;\n" +
			"PORT_RUNNER_LOG_LEVEL=debug and PORT_RUNNER_LOG_FORMAT=console change them.",
		flags: func(fs *flag.FlagSet) func([]string, io.Writer, io.Writer) int {
			path := configFlag(fs)
			return func(_ []string, _, stderr io.Writer) int { return runAgent(*path, stderr) }
		},
	}
}

func runAgent(path string, stderr io.Writer) int {
	// Before any credential is read: commands run as the agent's uid, and a dumpable agent's
	// /proc/PID/environ and memory are theirs to read.
	dumpErr := shim.SetNonDumpable()
	gc := gcDefaults(os.Getenv, sandbox.MemoryMax())
	defer gc.apply()()
	cfg, code := loadConfig("run", path, stderr)
	if cfg == nil {
		return code
	}
	// /proc/PID/environ keeps showing the initial environment: non-dumpable is what
	// protects that; this keeps the credentials out of anything that reads os.Environ.
	scrubEnv(cfg.AgentSecrets())
	log, err := newLogger(stderr)
	if err != nil { // only the PORT_RUNNER_LOG_* variables can be wrong: bad usage
		fmt.Fprintf(stderr, "port-runner: logger: %v\n", err)
		return exitUsage
	}
	defer func() { _ = log.Sync() }()
	if dumpErr != nil {
		log.Warn("cannot make the agent non-dumpable: commands may read its memory and initial environment", zap.Error(dumpErr))
	}

	stop, kill, stopSignals := signalContexts(log)
	defer stopSignals()
	m := metrics.New()
	m.SetVersion(version)
	deps := commandDeps(log, path)
	deps.Metrics = m
	stopReaper := startReaper(log, &deps)
	defer stopReaper()
	a, err := agent.New(cfg, deps)
	if err != nil {
		// Everything New checks comes from the config (URLs, credentials, CA file, jq).
		log.Error("cannot start: bad configuration", zap.Error(err))
		return exitUsage
	}
	where := []zap.Field{zap.String("topic", cfg.Kafka.Topic), zap.String("group", cfg.Kafka.Group)}
	if cfg.Polls() {
		where = []zap.Field{zap.String("transport", cfg.Transport), zap.Duration("interval", cfg.Polling.Interval.D())}
	}
	where = append(where, zap.Strings("actions", cfg.ActionNames()))
	if gc.tune {
		where = append(where, zap.String("gcPercent", "tuned")) // README "Memory and the garbage collector"
	}
	if gc.limit > 0 {
		where = append(where, zap.Int64("memoryLimit", gc.limit))
	}
	log.Info("port-runner starting", append([]zap.Field{zap.String("version", version)}, where...)...)
	if err := a.Run(stop, kill); err != nil {
		// One line, no stack trace: these are the expected failures (a refused broker, bad
		// credentials), and the error says which.
		log.Error("port-runner stopped: " + err.Error())
		return exitRuntime
	}
	log.Info("port-runner stopped")
	return exitOK
}

// commandDeps are how the agent runs commands, the same for run, try and demo: the exec
// shim, the config file to keep from them. Descriptors the agent inherited are kept from
// them too.
func commandDeps(log *zap.Logger, configPath string) agent.Deps {
	if err := executor.SealInheritedFDs(); err != nil {
		log.Warn("the descriptors the agent inherited may reach its commands", zap.Error(err))
	}
	prefix, kind := findShim(log)
	if configPath != "" {
		if abs, err := filepath.Abs(configPath); err == nil {
			configPath = abs
		}
	}
	return agent.Deps{Logger: log, Shim: prefix, ShimKind: kind, ConfigPath: configPath}
}

// startReaper makes the agent a child subreaper (the backstop that kills what a killed shim
// left, README "Isolation") for deps' runs, until stop.
func startReaper(log *zap.Logger, deps *agent.Deps) (stop func()) {
	r, err := executor.NewReaper(func(n int) {
		log.Warn("killed processes a run's killed shim left behind", zap.Int("processes", n))
	})
	if err != nil {
		log.Warn("not a child subreaper: what a killed shim leaves behind is not killed", zap.Error(err))
		return func() {}
	}
	deps.Reaper = r
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { r.Run(ctx) })
	return func() { cancel(); wg.Wait() }
}

// findShim is the exec shim's command prefix and kind (executor.ShimFor): port-runner-shim
// beside the agent, else the agent's own binary (one warning), else none (one warning).
func findShim(log *zap.Logger) ([]string, string) {
	exe, err := os.Executable()
	if err != nil {
		log.Warn("cannot find own binary: commands run without the exec shim, so their children may outlive a killed agent", zap.Error(err))
		return nil, executor.ShimNone
	}
	prefix, kind, err := executor.ShimFor(exe)
	switch {
	case err != nil && prefix == nil:
		log.Warn("no exec shim on this platform: commands run in a plain process group (README \"Isolation\")", zap.Error(err))
	case err != nil:
		log.Warn("no usable "+shim.Binary+" beside the agent: the agent's own binary is each command's shim, which costs its start-up on every run", zap.Error(err))
	}
	return prefix, kind
}

// scrubEnv removes from the agent's environment every variable holding one of secrets.
func scrubEnv(secrets []string) {
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if slices.Contains(secrets, v) {
			_ = os.Unsetenv(k)
		}
	}
}

// signalContexts returns stop, done at the first SIGTERM/SIGINT (drain), and kill, done at
// the second (cancel running commands at once). release stops listening and waits for the
// signal goroutine, so it never outlives the command that started it.
func signalContexts(log *zap.Logger) (stop, kill context.Context, release func()) {
	stop, stopFn := context.WithCancel(context.Background())
	kill, killFn := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan struct{})
	var watcher sync.WaitGroup
	watcher.Go(func() {
		select {
		case s := <-sigs:
			log.Info("signal received: draining; a second signal cancels running commands", zap.String("signal", s.String()))
			stopFn()
		case <-done:
			return
		}
		select {
		case s := <-sigs:
			log.Warn("second signal: cancelling running commands", zap.String("signal", s.String()))
			killFn()
		case <-done:
		}
	})
	return stop, kill, func() {
		signal.Stop(sigs)
		close(done)
		watcher.Wait()
		stopFn()
		killFn()
	}
}

// newLogger logs JSON (or console) lines to w. No stack traces: every error the agent logs
// is one it expects and explains (a refused broker, bad credentials, a failed run).
func newLogger(w io.Writer) (*zap.Logger, error) {
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = "ts"
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	level := zapcore.InfoLevel
	if lvl := os.Getenv("PORT_RUNNER_LOG_LEVEL"); lvl != "" {
		l, err := zapcore.ParseLevel(lvl)
		if err != nil {
			return nil, fmt.Errorf("PORT_RUNNER_LOG_LEVEL: %w", err)
		}
		level = l
	}
	encoder := zapcore.NewJSONEncoder(enc)
	if os.Getenv("PORT_RUNNER_LOG_FORMAT") == "console" {
		encoder = zapcore.NewConsoleEncoder(enc)
	}
	return zap.New(zapcore.NewCore(encoder, zapcore.Lock(zapcore.AddSync(w)), level)), nil
}

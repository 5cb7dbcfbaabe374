// Command port-runner executes Port self-service action runs from Kafka. See README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/port-runner/port-runner/executor"
	"github.com/port-runner/port-runner/internal/agent"
	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/demo"
	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/runmsg"
	"github.com/port-runner/port-runner/internal/shim"
	"github.com/port-runner/port-runner/metrics"
)

// Exit codes (SPEC "Commands").
const (
	exitOK      = 0
	exitRuntime = 1
	exitUsage   = 2
)

// version and commit are set at build time (the Dockerfile's VERSION and COMMIT build
// args): -ldflags "-X main.version=v1.2.3 -X main.commit=abc123". Without commit, the VCS
// revision Go stamps into a build from a git checkout is used.
var (
	version = "dev"
	commit  = ""
)

const usage = `port-runner executes Port self-service action runs from Kafka.

Usage:
  port-runner run --config FILE        the agent (PORT_RUNNER_CONFIG may name the file)
  port-runner demo                     the whole loop in-process: Kafka, Port emulator, examples/
  port-runner validate --config FILE [--connect]
                                       check a config: every problem, with key and line;
                                       --connect also tries the brokers, SASL, topic, group, Port
  port-runner try ACTION [--properties JSON] [--entity ID] [--config FILE]
                                       run one action locally against an in-process Port
                                       emulator (no Kafka); exit 0 on SUCCESS, 1 on FAILURE
  port-runner emulator --addr ADDR --brokers HOST:PORT[,...] [--org ORG] [--client-id ID --client-secret S]
                       [--secret-inputs ACTION=INPUT,...] [--kafka-username U --kafka-password P]
                                       the Port API emulator on its own
  port-runner version                  version, commit, Go version

Exit codes: 0 ok, 1 runtime failure, 2 bad usage or bad config.
`

func main() {
	// The agent's binary also serves as each command's shim when port-runner-shim is not
	// beside it (package internal/shim); that role comes first, before anything of the agent.
	if len(os.Args) > 1 && os.Args[1] == shim.Command {
		os.Exit(shim.Main(os.Args[2:]))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stderr)
	case "demo":
		return cmdDemo(args[1:], stdout, stderr)
	case "validate":
		return cmdValidate(args[1:], stdout, stderr)
	case "emulator":
		return cmdEmulator(args[1:], stderr)
	case "try":
		return cmdTry(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, versionString())
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "port-runner: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

func versionString() string {
	rev := commit
	if bi, ok := debug.ReadBuildInfo(); ok && rev == "" {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				rev = s.Value
			}
		}
	}
	if rev == "" {
		rev = "unknown"
	}
	return fmt.Sprintf("port-runner %s (commit %s, %s %s/%s)", version, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// loadConfig reads and validates the config named by --config or PORT_RUNNER_CONFIG and
// reports every problem it has at once, each with its key and line. flags adds the
// command's own flags.
func loadConfig(name string, args []string, stderr io.Writer, flags ...func(*flag.FlagSet)) (*config.Config, int) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", os.Getenv("PORT_RUNNER_CONFIG"), "config file (or PORT_RUNNER_CONFIG)")
	for _, f := range flags {
		f(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "port-runner %s: unexpected argument %q (the file goes after --config)\n", name, fs.Arg(0))
		return nil, exitUsage
	}
	if *path == "" {
		fmt.Fprintf(stderr, "port-runner %s: --config FILE is required (or set PORT_RUNNER_CONFIG)\n", name)
		return nil, exitUsage
	}
	cfg, lines, problems := config.LoadAll(*path)
	if cfg != nil {
		var vs config.Problems
		if err := cfg.Validate(runmsg.CompileSelector, exec.LookPath); errors.As(err, &vs) {
			problems = append(problems, notUnder(vs, problems)...)
		}
	}
	if len(problems) > 0 {
		fmt.Fprintf(stderr, "port-runner %s: %s is not valid (%d problem(s)):\n", name, *path, len(problems))
		for _, p := range problems.WithLines(lines) {
			for _, line := range strings.Split(p.Error(), "\n") {
				fmt.Fprintf(stderr, "  %s\n", line)
			}
		}
		return nil, exitUsage
	}
	return cfg, exitOK
}

// notUnder drops the problems about keys that an earlier problem already covers: a value
// that did not decode is left out, and validation would only add "required" for it.
func notUnder(ps, earlier config.Problems) config.Problems {
	var out config.Problems
	for _, p := range ps {
		covered := false
		for _, e := range earlier {
			k, ek := config.Key(p), config.Key(e)
			if ek != "" && (k == ek || strings.HasPrefix(k, ek+".") || strings.HasPrefix(k, ek+"[")) {
				covered = true
			}
		}
		if !covered {
			out = append(out, p)
		}
	}
	return out
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	var connect bool
	cfg, code := loadConfig("validate", args, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&connect, "connect", false, "also try the brokers, SASL, the topic, the group and the Port credentials")
	})
	if cfg == nil {
		return code
	}
	fmt.Fprintf(stdout, "config ok: %d action(s) (%s), topic %s, group %s\n",
		len(cfg.Actions), strings.Join(cfg.ActionNames(), ", "), cfg.Kafka.Topic, cfg.Kafka.Group)
	// The group's rebalance timeout is derived, not configured: say from what.
	fmt.Fprintf(stdout, "rebalance timeout %s: kafka.revokeTimeout %s + %s kill grace + %s closing budget + %s commit\n",
		cfg.Kafka.RebalanceTimeout(), cfg.Kafka.RevokeTimeout.D(), config.KillGrace, config.ClosingBudget, config.CommitMargin)
	if !connect {
		return exitOK
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	failed := 0
	for _, c := range agent.CheckConnections(ctx, cfg) {
		switch {
		case c.Err != nil:
			failed++
			fmt.Fprintf(stdout, "  FAILED   %s: %v\n", c.Name, c.Err)
		case c.Skipped != "":
			fmt.Fprintf(stdout, "  skipped  %s: %s\n", c.Name, c.Skipped)
		default:
			fmt.Fprintf(stdout, "  ok       %s: %s\n", c.Name, c.Detail)
		}
	}
	if failed > 0 {
		fmt.Fprintf(stderr, "port-runner validate --connect: %d check(s) failed\n", failed)
		return exitRuntime
	}
	return exitOK
}

func cmdRun(args []string, stderr io.Writer) int {
	// Before any credential is read: commands run as the agent's uid, and a dumpable agent's
	// /proc/PID/environ and memory are theirs to read.
	dumpErr := shim.SetNonDumpable()
	cfg, code := loadConfig("run", args, stderr)
	if cfg == nil {
		return code
	}
	// /proc/PID/environ keeps showing the initial environment: non-dumpable is what
	// protects that; this keeps the credentials out of anything that reads os.Environ.
	scrubEnv(cfg.AgentSecrets())
	log, err := newLogger(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "port-runner: logger: %v\n", err)
		return exitRuntime
	}
	defer func() { _ = log.Sync() }()
	if dumpErr != nil {
		log.Warn("cannot make the agent non-dumpable: commands may read its memory and initial environment", zap.Error(dumpErr))
	}

	stop, kill, stopSignals := signalContexts(log)
	defer stopSignals()
	m := metrics.New()
	m.SetVersion(version)
	deps := agent.Deps{Logger: log, Metrics: m, Shim: findShim(log)}
	a, err := agent.New(cfg, deps)
	if err != nil {
		// Everything New checks comes from the config (URLs, credentials, CA file, jq).
		log.Error("cannot start: bad configuration", zap.Error(err))
		return exitUsage
	}
	log.Info("port-runner starting", zap.String("version", version), zap.String("topic", cfg.Kafka.Topic),
		zap.String("group", cfg.Kafka.Group), zap.Strings("actions", cfg.ActionNames()))
	if err := a.Run(stop, kill); err != nil {
		// One line, no stack trace: these are the expected failures (a refused broker, bad
		// credentials), and the error says which.
		log.Error("port-runner stopped: " + err.Error())
		return exitRuntime
	}
	log.Info("port-runner stopped")
	return exitOK
}

// findShim is the exec shim's command prefix: port-runner-shim beside the agent, else the
// agent's own binary (one warning), else none (one warning).
func findShim(log *zap.Logger) []string {
	exe, err := os.Executable()
	if err != nil {
		log.Warn("cannot find own binary: commands run without the exec shim, so their children may outlive a killed agent", zap.Error(err))
		return nil
	}
	prefix, err := executor.ShimFor(exe)
	switch {
	case err != nil && prefix == nil:
		log.Warn("no exec shim on this platform: commands run in a plain process group (README \"Isolation\")", zap.Error(err))
	case err != nil:
		log.Warn(shim.Binary+" not found beside the agent: the agent's own binary is each command's shim, which costs its start-up on every run", zap.Error(err))
	}
	return prefix
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

func cmdDemo(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "port-runner demo takes no arguments")
		return exitUsage
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	if err := demo.Run(ctx, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "demo failed: %v\n", err)
		return exitRuntime
	}
	return exitOK
}

func cmdTry(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("try", flag.ContinueOnError)
	fs.SetOutput(stderr)
	props := fs.String("properties", "{}", "the run's inputs, a JSON object")
	entity := fs.String("entity", "", "the entity of a DAY-2 run")
	path := fs.String("config", os.Getenv("PORT_RUNNER_CONFIG"), "config file (default: the shipped examples/config.yaml)")
	// The action comes first (`try ACTION --flags`), flags may also precede it.
	var action string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		action, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if action == "" && fs.NArg() > 0 {
		action = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return exitUsage
		}
	}
	if action == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: port-runner try ACTION [--properties JSON] [--entity ID] [--config FILE]")
		return exitUsage
	}
	var properties map[string]any
	if err := json.Unmarshal([]byte(*props), &properties); err != nil {
		fmt.Fprintf(stderr, "port-runner try: --properties must be a JSON object: %v\n", err)
		return exitUsage
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	ok, err := demo.Try(ctx, demo.TryOptions{Action: action, Properties: properties, Entity: *entity, ConfigPath: *path}, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "port-runner try: %v\n", err)
		return exitRuntime
	}
	if !ok {
		return exitRuntime
	}
	return exitOK
}

func cmdEmulator(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	brokers := fs.String("brokers", "", "Kafka brokers to write run messages to (comma separated)")
	org := fs.String("org", envOr("PORT_ORG_ID", "org_local"), "organization id (topic <org>.runs)")
	id := fs.String("client-id", envOr("PORT_CLIENT_ID", "local-client"), "accepted client id")
	secret := fs.String("client-secret", envOr("PORT_CLIENT_SECRET", "local-client-secret"), "accepted client secret; signs run messages")
	budget := fs.Int("budget", 0, "requests per budget window before 429 (0: unlimited)")
	window := fs.Duration("budget-window", 5*time.Minute, "length of a budget window (whole seconds)")
	kafkaUser := fs.String("kafka-username", "", "with --kafka-password: GET /v1/kafka-credentials answers --brokers and these")
	kafkaPass := fs.String("kafka-password", os.Getenv("EMULATOR_KAFKA_PASSWORD"), "see --kafka-username (or EMULATOR_KAFKA_PASSWORD)")
	secretInputs := fs.String("secret-inputs", "", "inputs created runs carry encrypted: ACTION=INPUT,INPUT[;ACTION=...]")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	secrets, err := parseSecretInputs(*secretInputs)
	if err != nil {
		fmt.Fprintf(stderr, "port-runner emulator: --secret-inputs: %v\n", err)
		return exitUsage
	}
	log, err := newLogger(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "port-runner: logger: %v\n", err)
		return exitRuntime
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	var kafkaCreds *emulator.KafkaCredentials
	if *kafkaUser != "" && *kafkaPass != "" && *brokers != "" {
		kafkaCreds = &emulator.KafkaCredentials{Brokers: strings.Split(*brokers, ","), Username: *kafkaUser, Password: *kafkaPass}
	}
	// It may run for days (docker compose): keep only the latest requests in memory.
	opts := emulator.Options{ClientID: *id, ClientSecret: *secret, OrgID: *org, Budget: *budget, BudgetWindow: *window, MaxRequests: 10000,
		SecretInputs: secrets, KafkaCredentials: kafkaCreds,
		Logf: func(f string, a ...any) { log.Sugar().Infof(f, a...) }}
	if *brokers != "" {
		producer, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(*brokers, ",")...), kgo.AllowAutoTopicCreation())
		if err != nil {
			log.Error("kafka producer", zap.Error(err))
			return exitUsage
		}
		defer producer.Close()
		opts.Produce = func(ctx context.Context, topic string, key, value []byte) error {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			return producer.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: key, Value: value}).FirstErr()
		}
	}
	emu := emulator.New(opts)
	srv, err := emu.Serve(ctx, *addr)
	if err != nil {
		log.Error("emulator", zap.Error(err))
		return exitRuntime
	}
	log.Info("Port API emulator serving", zap.String("url", srv.URL()), zap.String("topic", *org+".runs"))
	if err := srv.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("emulator", zap.Error(err))
		return exitRuntime
	}
	return exitOK
}

// parseSecretInputs reads "ACTION=INPUT,INPUT;ACTION=INPUT".
func parseSecretInputs(v string) (map[string][]string, error) {
	out := map[string][]string{}
	for part := range strings.SplitSeq(v, ";") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		action, inputs, ok := strings.Cut(part, "=")
		if !ok || action == "" || inputs == "" {
			return nil, fmt.Errorf("%q is not ACTION=INPUT[,INPUT]", part)
		}
		out[action] = append(out[action], strings.Split(inputs, ",")...)
	}
	return out, nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

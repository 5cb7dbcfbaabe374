package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/port-runner/port-runner/internal/emulator"
)

// emulatorFlags are the emulator command's settings.
type emulatorFlags struct {
	addr, brokers, org, clientID, clientSecret string
	budget                                     int
	budgetWindow                               time.Duration
	kafkaUser, kafkaPassword, secretInputs     string
	polling                                    bool
	set                                        map[string]bool // the flags given on the command line
}

func emulatorCommand() command {
	return command{
		name: "emulator",
		synopsis: "[--addr ADDR] [--brokers HOST:PORT,...] [--org ORG] [--client-id ID] [--client-secret S]\n" +
			"                       [--budget N --budget-window D] [--secret-inputs ACTION=INPUT,...] [--kafka-username U --kafka-password P]\n" +
			"                       [--polling]",
		summary: "The Port API emulator on its own; the runs it creates go to --brokers.",
		detail:  "It serves until SIGTERM or SIGINT. Exit 1 when it cannot listen or serve.",
		flags: func(fs *flag.FlagSet) func([]string, io.Writer, io.Writer) int {
			var f emulatorFlags
			fs.StringVar(&f.addr, "addr", "127.0.0.1:8080", "listen address")
			fs.StringVar(&f.brokers, "brokers", "", "Kafka brokers to write run messages to (comma separated)")
			fs.StringVar(&f.org, "org", envOr("PORT_ORG_ID", "org_local"), "organization id (topic <org>.runs)")
			fs.StringVar(&f.clientID, "client-id", envOr("PORT_CLIENT_ID", "local-client"), "accepted client id")
			// The secrets' defaults come from the environment after parsing, so that no usage
			// ever prints them.
			fs.StringVar(&f.clientSecret, "client-secret", "", "accepted client secret; signs run messages (default: PORT_CLIENT_SECRET, else local-client-secret)")
			fs.IntVar(&f.budget, "budget", 0, "requests per budget window before 429 (0: unlimited)")
			fs.DurationVar(&f.budgetWindow, "budget-window", 5*time.Minute, "length of a budget window, whole seconds; with --budget")
			fs.StringVar(&f.kafkaUser, "kafka-username", "", "with --kafka-password and --brokers: GET /v1/kafka-credentials answers them")
			fs.StringVar(&f.kafkaPassword, "kafka-password", "", "see --kafka-username (default: EMULATOR_KAFKA_PASSWORD)")
			fs.BoolVar(&f.polling, "polling", false, "hold created runs for agents to claim (transport: polling) instead of producing them")
			fs.StringVar(&f.secretInputs, "secret-inputs", "", "inputs created runs carry encrypted: ACTION=INPUT,INPUT[;ACTION=...]")
			return func(_ []string, _, stderr io.Writer) int {
				f.set = map[string]bool{}
				fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
				f.clientSecret = givenOr(f.set["client-secret"], f.clientSecret, envOr("PORT_CLIENT_SECRET", "local-client-secret"))
				f.kafkaPassword = givenOr(f.set["kafka-password"], f.kafkaPassword, os.Getenv("EMULATOR_KAFKA_PASSWORD"))
				opts, err := f.options()
				if err != nil {
					fmt.Fprintf(stderr, "port-runner emulator: %v\n", err)
					return exitUsage
				}
				return runEmulator(opts, f, stderr)
			}
		},
	}
}

// givenOr is given when its flag was set on the command line, else fallback.
func givenOr(set bool, given, fallback string) string {
	if set {
		return given
	}
	return fallback
}

// options checks that every flag given is one the emulator will use, and turns them into its
// options (all but the producer).
func (f emulatorFlags) options() (emulator.Options, error) {
	var none emulator.Options
	switch {
	case f.budget < 0:
		return none, fmt.Errorf("--budget %d: want 0 (unlimited) or more", f.budget)
	case f.set["budget-window"] && f.budget == 0:
		return none, errors.New("--budget-window is the window of --budget: give both")
	case f.budgetWindow < time.Second || f.budgetWindow%time.Second != 0:
		return none, fmt.Errorf("--budget-window %s: want whole seconds, at least 1s", f.budgetWindow)
	case (f.kafkaUser != "" || f.set["kafka-password"]) && (f.kafkaUser == "" || f.kafkaPassword == "" || f.brokers == ""):
		return none, errors.New("--kafka-username, --kafka-password (or EMULATOR_KAFKA_PASSWORD) and --brokers go together")
	}
	secrets, err := parseSecretInputs(f.secretInputs)
	if err != nil {
		return none, fmt.Errorf("--secret-inputs: %w", err)
	}
	opts := emulator.Options{ClientID: f.clientID, ClientSecret: f.clientSecret, OrgID: f.org,
		Budget: f.budget, BudgetWindow: f.budgetWindow, SecretInputs: secrets,
		// It may run for days (docker compose): keep only the latest requests in memory.
		MaxRequests: 10000}
	if f.polling {
		opts.Delivery = emulator.DeliveryPolling
	}
	if f.kafkaUser != "" {
		opts.KafkaCredentials = &emulator.KafkaCredentials{Brokers: strings.Split(f.brokers, ","), Username: f.kafkaUser, Password: f.kafkaPassword}
	}
	return opts, nil
}

// runEmulator serves the emulator on f.addr, producing its runs to f.brokers, until a signal.
func runEmulator(opts emulator.Options, f emulatorFlags, stderr io.Writer) int {
	log, err := newLogger(stderr)
	if err != nil { // only the PORT_RUNNER_LOG_* variables can be wrong: bad usage
		fmt.Fprintf(stderr, "port-runner: logger: %v\n", err)
		return exitUsage
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	opts.Logf = func(format string, a ...any) { log.Sugar().Infof(format, a...) }
	if f.brokers != "" {
		producer, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(f.brokers, ",")...), kgo.AllowAutoTopicCreation())
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
	srv, err := emulator.New(opts).Serve(ctx, f.addr)
	if err != nil {
		log.Error("emulator", zap.Error(err))
		return exitRuntime
	}
	log.Info("Port API emulator serving", zap.String("url", srv.URL()), zap.String("topic", f.org+".runs"))
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

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/port-runner/port-runner/internal/demo"
	"github.com/port-runner/port-runner/internal/shim"
)

func tryCommand() command {
	return command{
		name:     "try",
		synopsis: "ACTION [--properties JSON] [--entity ID] [--config FILE] [--cancel-after DURATION] [--polling]",
		summary:  "Run one action of a config locally, against an in-process Port API emulator (no Kafka).",
		detail: "It prints the command's environment and run file (masked), the log and status as Port\n" +
			"shows them and every PATCH the run made. Exit 0 on SUCCESS, 1 on FAILURE, 2 on a bad\n" +
			"config or an ACTION it does not have. Without --config (or PORT_RUNNER_CONFIG), the\n" +
			"shipped example config. --cancel-after ends the run in Port while it runs, as a user\n" +
			"does, to show how the command is stopped.",
		operands: []string{"ACTION"},
		flags: func(fs *flag.FlagSet) func([]string, io.Writer, io.Writer) int {
			props := fs.String("properties", "{}", "the run's inputs, a JSON object (a workflow node's payload)")
			entity := fs.String("entity", "", "the entity of a DAY-2 run")
			path := fs.String("config", os.Getenv("PORT_RUNNER_CONFIG"), "config file (default: the shipped examples/config.yaml)")
			cancelAfter := fs.Duration("cancel-after", 0, "cancel the run in Port this long after it starts, as a user does (0: never)")
			polling := fs.Bool("polling", false, "take the run as transport: polling does: held by Port, claimed, acknowledged (also with transport: polling in the config)")
			return func(operands []string, stdout, stderr io.Writer) int {
				var properties map[string]any
				if err := json.Unmarshal([]byte(*props), &properties); err != nil {
					fmt.Fprintf(stderr, "port-runner try: --properties must be a JSON object: %v\n", err)
					return exitUsage
				}
				if *cancelAfter < 0 {
					fmt.Fprintf(stderr, "port-runner try: --cancel-after must not be negative\n")
					return exitUsage
				}
				opts := demo.TryOptions{Action: operands[0], Properties: properties, Entity: *entity, ConfigPath: *path,
					CancelAfter: *cancelAfter, Polling: *polling}
				return try(opts, stdout, stderr)
			}
		},
	}
}

func try(opts demo.TryOptions, stdout, stderr io.Writer) int {
	// As run does (README "Isolation"), before any credential is read: a command of this uid,
	// sandbox off, would read this process's initial environment (the shell's credentials,
	// the config's ${PORT_CLIENT_SECRET}) and memory.
	if err := shim.SetNonDumpable(); err != nil && runtime.GOOS == "linux" {
		fmt.Fprintf(stderr, "port-runner try: cannot make this process non-dumpable: commands may read its memory and initial environment: %v\n", err)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	log := zap.New(zapcore.NewNopCore())
	opts.Exec = commandDeps(log, opts.ConfigPath)
	stopReaper := startReaper(log, &opts.Exec)
	defer stopReaper()
	ok, err := demo.Try(ctx, opts, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "port-runner try: %v\n", err)
		if errors.As(err, new(demo.BadConfig)) {
			return exitUsage
		}
		return exitRuntime
	}
	if !ok {
		return exitRuntime
	}
	return exitOK
}

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/port-runner/port-runner/internal/demo"
)

func demoCommand() command {
	return command{
		name:    "demo",
		summary: "The whole loop in-process: Kafka, the Port API emulator, the agent on the example config.",
		detail: "It triggers a CREATE, a DAY-2, a failing, a secret-input and a workflow node run and prints\n" +
			"each one's log and status as Port shows them. Exit 0 when all ended as expected, 1 if not.",
		flags: func(*flag.FlagSet) func([]string, io.Writer, io.Writer) int {
			return func(_ []string, stdout, stderr io.Writer) int {
				ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
				defer cancel()
				log := zap.New(zapcore.NewNopCore())
				deps := commandDeps(log, "")
				stopReaper := startReaper(log, &deps)
				defer stopReaper()
				if err := demo.Run(ctx, deps, stdout, stderr); err != nil {
					fmt.Fprintf(stderr, "demo failed: %v\n", err)
					return exitRuntime
				}
				return exitOK
			}
		},
	}
}

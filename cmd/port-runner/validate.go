package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/port-runner/port-runner/internal/agent"
	"github.com/port-runner/port-runner/internal/config"
)

func validateCommand() command {
	return command{
		name:     "validate",
		synopsis: "--config FILE [--connect]",
		summary:  "Check a config: every problem at once, each with its key and line.",
		detail: "Exit 0 when it is valid, 2 when it is not. --connect also tries the brokers, SASL,\n" +
			"the topic, the group and the Port credentials (transport: polling: the Port credentials\n" +
			"and its claim route), and exits 1 when one of them fails.",
		flags: func(fs *flag.FlagSet) func([]string, io.Writer, io.Writer) int {
			path := configFlag(fs)
			connect := fs.Bool("connect", false, "also try the brokers, SASL, the topic, the group and the Port credentials (transport: polling: the Port credentials and the claim route)")
			return func(_ []string, stdout, stderr io.Writer) int {
				return validate(*path, *connect, stdout, stderr)
			}
		},
	}
}

func validate(path string, connect bool, stdout, stderr io.Writer) int {
	cfg, code := loadConfig("validate", path, stderr)
	if cfg == nil {
		return code
	}
	if cfg.Polls() {
		fmt.Fprintf(stdout, "config ok: %d action(s) (%s), transport polling: claims every %s at most while idle, visibility timeout %s\n",
			len(cfg.Actions), strings.Join(cfg.ActionNames(), ", "), cfg.Polling.Interval.D(), cfg.Polling.VisibilityTimeout.D())
	} else {
		fmt.Fprintf(stdout, "config ok: %d action(s) (%s), topic %s, group %s\n",
			len(cfg.Actions), strings.Join(cfg.ActionNames(), ", "), cfg.Kafka.Topic, cfg.Kafka.Group)
		// The fence and the leases' bound are derived, not configured: say from what.
		fence := cfg.Kafka.Fence()
		fmt.Fprintf(stdout, "session timeout %s (kafka.sessionTimeout), fence %s: a replica that cannot confirm its membership stops its runs after %s, all dead by %s, before another replica may take them over\n",
			cfg.Kafka.SessionTimeout.D(), fence, fence/2, fence)
		fmt.Fprintf(stdout, "leases: a replica that left the group (SIGTERM) acts on its runs for %s (executor.shutdownTimeout %s + %s kill grace + %s closing budget); others decide them %s after it left (+ the fence + %s margin)\n",
			cfg.Drain(config.ClosingBudget), cfg.Executor.ShutdownTimeout.D(), config.KillGrace, config.ClosingBudget, cfg.LeaseBound(config.ClosingBudget), config.LeaseMargin)
	}
	// Where the config meets this machine: the kernel, the agent's capabilities, the shim.
	log := zap.New(zapcore.NewNopCore())
	summary, err := agent.Isolation(cfg, commandDeps(log, path))
	if err != nil {
		fmt.Fprintf(stderr, "port-runner validate: %v\n", err)
		return exitUsage
	}
	fmt.Fprintln(stdout, summary)
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

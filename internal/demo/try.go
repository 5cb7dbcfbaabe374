package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/port-runner/port-runner/executor"
	"github.com/port-runner/port-runner/internal/agent"
	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/examples"
	"github.com/port-runner/port-runner/internal/runmsg"
)

// TryOptions are try's command line.
type TryOptions struct {
	Action     string
	Properties map[string]any
	Entity     string // set: a DAY-2 run on this entity
	ConfigPath string // "": the shipped example config (examples/config.yaml)
	// Polling takes the run as transport: polling does: Port holds it, the agent claims,
	// acknowledges, runs and closes it (also when the config says transport: polling).
	Polling bool
	// CancelAfter, when set, ends the run in Port that long after it starts, as a user does
	// (an action run set to FAILURE, a node run's workflow cancelled with force).
	CancelAfter time.Duration
	// Exec is how commands run, as under `port-runner run` (the shim, the reaper, the config
	// file kept from commands); its Logger is try's own (it serves no metrics).
	Exec agent.Deps
}

// Credentials try uses where the config leaves them unset: the emulator accepts whatever
// the config says, and none of it leaves the machine.
const (
	tryClientID     = "try-client"
	tryClientSecret = "try-client-secret-0123456789abcdef-local"
	tryOrg          = "org_try"
)

// BadConfig is an error of try's config or of its ACTION, not of the run or the machine:
// `port-runner try` exits 2 for it, as every command does for a bad config.
type BadConfig struct{ Err error }

func (e BadConfig) Error() string { return e.Err.Error() }
func (e BadConfig) Unwrap() error { return e.Err }

// Try is `port-runner try`: one configured action run locally against the in-process Port
// API emulator, no Kafka. It prints what the command saw (its environment and run file,
// masked) and what Port would show (the log, status, every PATCH, entity change, response),
// for the edit-and-run loop of an action's script. It reports whether the run ended SUCCESS;
// errors are about the setup (config, action), not the run's result.
func Try(ctx context.Context, o TryOptions, out, logOut io.Writer) (bool, error) {
	cfg, cleanup, err := loadConfig(o.ConfigPath)
	if err != nil {
		return false, err
	}
	defer cleanup()
	if _, ok := cfg.Actions[o.Action]; !ok {
		return false, BadConfig{fmt.Errorf("action %q is not in the config (actions: %s)", o.Action, strings.Join(cfg.ActionNames(), ", "))}
	}

	secretInputs := map[string][]string{}
	for name, ac := range cfg.Actions {
		secretInputs[name] = ac.SecretInputs // encrypted in the message as Port would
	}
	polled := o.Polling || cfg.Polls()
	delivery := emulator.DeliveryKafka
	if polled {
		delivery, cfg.Transport = emulator.DeliveryPolling, config.TransportPolling
	}
	emu := emulator.New(emulator.Options{ClientID: cfg.Port.ClientID, ClientSecret: cfg.Port.ClientSecret,
		OrgID: cfg.Port.OrgID, SecretInputs: secretInputs, Delivery: delivery})
	emuCtx, stopEmu := context.WithCancel(ctx)
	srv, err := emu.Serve(emuCtx, "127.0.0.1:0")
	if err != nil {
		stopEmu()
		return false, fmt.Errorf("start the Port API emulator: %w", err)
	}
	defer func() { stopEmu(); _ = srv.Wait() }()
	cfg.Port.BaseURL = srv.URL()

	checkOftenIfCancelling(cfg, o.CancelAfter)
	deps := o.Exec
	deps.Logger = zap.New(consoleCore(logOut))
	a, err := agent.New(cfg, deps)
	if err != nil {
		return false, BadConfig{err} // everything New checks comes from the config, as under run
	}
	created, msg, kind, props, err := newTryRun(emu, cfg, o, polled)
	if err != nil {
		return false, err
	}
	fmt.Fprintf(out, "━━ try %s (%s) · run %s · inputs %s · Port API emulator %s\n\n", o.Action, kind, created.ID, props, srv.URL())

	stopCancel := cancelLater(ctx, out, emu, created, o.CancelAfter)
	var tried agent.Tried
	var runErr error
	if polled {
		runErr = pollOne(ctx, a, emu, created.ID)
	} else {
		tried, runErr = a.Try(ctx, msg)
	}
	stopCancel()
	masks := append(slices.Clone(tried.Masks), cfg.Security.Mask...)
	mask := masker(masks)
	if tried.Spec.Argv != nil {
		fmt.Fprintf(out, "Command: %s\n\nEnvironment (masked):\n", mask(strings.Join(tried.Spec.Argv, " ")))
		for _, kv := range executor.Environ(tried.Spec, "(a private temp file, removed after the run)") {
			fmt.Fprintf(out, "  %s\n", mask(kv))
		}
		var pretty bytes.Buffer
		if json.Indent(&pretty, tried.Spec.RunFile, "  ", "  ") != nil {
			pretty.Write(tried.Spec.RunFile)
		}
		fmt.Fprintf(out, "\n$PORT_RUN_FILE (masked):\n  %s\n", mask(pretty.String()))
	}
	if polled {
		fmt.Fprintf(out, "The run went through Port's claim API; try without --polling to see its command's environment.\n")
	}
	run, _ := emu.Run(created.ID)
	printPort(out, emu, run)
	if runErr != nil {
		return false, runErr
	}
	return run.Status == "SUCCESS", nil
}

// printPort shows the run as Port has it, and every change the run made in Port.
func printPort(out io.Writer, emu *emulator.Emulator, run emulator.RunState) {
	fmt.Fprintf(out, "\nLog in Port:\n")
	for _, e := range run.Logs {
		for _, line := range strings.Split(e.Message, "\n") {
			fmt.Fprintf(out, "  %s  %s\n", e.CreatedAt.Format("15:04:05.000"), line)
		}
	}
	if run.NodeRun {
		b, _ := json.Marshal(run.Output)
		fmt.Fprintf(out, "\nStatus: COMPLETED · %s\nOutput: %s\n", run.Result, b)
	} else {
		fmt.Fprintf(out, "\nStatus: %s · %s\n", run.Status, run.StatusLabel)
	}
	for _, l := range run.Link {
		fmt.Fprintf(out, "Link: %s\n", l)
	}
	if run.Summary != "" {
		fmt.Fprintf(out, "Summary: %s\n", run.Summary)
	}
	if run.ExternalRunID != "" {
		fmt.Fprintf(out, "External run id: %s\n", run.ExternalRunID)
	}
	if run.Pending {
		fmt.Fprintf(out, "Claimed %d time(s) through POST %s/claim-pending; acknowledged: %v\n", run.Claims, claimRoutes(run), run.Acked)
	}
	if run.Response != nil {
		b, _ := json.Marshal(run.Response)
		fmt.Fprintf(out, "Response: %s\n", b)
	}
	fmt.Fprintf(out, "\nRequests that changed Port (besides the log):\n")
	n := 0
	for _, r := range emu.Requests() {
		isPatch := r.Method == "PATCH" && strings.HasSuffix(strings.TrimSuffix(r.Path, "/response"), "/runs/"+run.ID) ||
			r.Path == claimRoutes(run)+"/ack" || r.Path == "/v1/organization"
		isEntity := r.Method != "GET" && strings.HasPrefix(r.Path, "/v1/blueprints/")
		if !isPatch && !isEntity {
			continue
		}
		n++
		q := ""
		if r.Query != "" {
			q = "?" + r.Query
		}
		fmt.Fprintf(out, "  %s %s%s -> %d %s\n", r.Method, r.Path, q, r.Status, bytes.TrimSpace(r.Body))
	}
	if n == 0 {
		fmt.Fprintf(out, "  (none)\n")
	}
}

// claimRoutes is where Port's claim and acknowledgement routes for run's kind begin.
func claimRoutes(run emulator.RunState) string {
	if run.NodeRun {
		return "/v1/workflows/runs"
	}
	return "/v1/actions/runs"
}

// loadConfig reads the config as `run` would, or the shipped example, and points it at
// nothing but this process: no Kafka, credentials defaulted where unset.
func loadConfig(path string) (*config.Config, func(), error) {
	cleanup := func() {}
	var cfg *config.Config
	if path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, cleanup, BadConfig{fmt.Errorf("read config: %w", err)}
		}
		if cfg, err = config.Parse(raw, os.LookupEnv); err != nil {
			return nil, cleanup, BadConfig{fmt.Errorf("%s: %w", path, err)}
		}
		wd, err := os.Getwd()
		if err != nil {
			return nil, cleanup, err
		}
		cfg.ResolveCommands(wd)
	} else {
		dir, err := os.MkdirTemp("", "port-runner-try-*")
		if err != nil {
			return nil, cleanup, err
		}
		cleanup = func() { _ = os.RemoveAll(dir) }
		if err := examples.Extract(dir); err != nil {
			return nil, cleanup, err
		}
		raw, err := fs.ReadFile(examples.FS, "config.yaml")
		if err != nil {
			return nil, cleanup, err
		}
		if cfg, err = config.Parse(raw, os.LookupEnv); err != nil {
			return nil, cleanup, fmt.Errorf("examples/config.yaml: %w", err)
		}
		cfg.ResolveCommands(dir)
	}
	if cfg.Port.ClientID == "" {
		cfg.Port.ClientID = tryClientID
	}
	if cfg.Port.ClientSecret == "" {
		cfg.Port.ClientSecret = tryClientSecret
	}
	if cfg.Port.OrgID == "" {
		cfg.Port.OrgID = tryOrg
	}
	// No Kafka: the run goes straight to the agent.
	cfg.Kafka = config.Kafka{Topic: cfg.Port.OrgID + ".runs", StartOffset: "latest", GroupProtocol: "classic",
		SessionTimeout: cfg.Kafka.SessionTimeout, MaxDecompressBatchBytes: cfg.Kafka.MaxDecompressBatchBytes}
	cfg.Metrics.Addr = "-"
	if err := cfg.Validate(runmsg.CompileSelector, exec.LookPath); err != nil {
		return nil, cleanup, BadConfig{fmt.Errorf("the config is not valid:\n%w", err)}
	}
	return cfg, cleanup, nil
}

func masker(masks []string) func(string) string {
	var pairs []string
	slices.SortFunc(masks, func(a, b string) int { return len(b) - len(a) })
	for _, m := range masks {
		if m != "" {
			pairs = append(pairs, m, "***")
		}
	}
	r := strings.NewReplacer(pairs...)
	return r.Replace
}

// consoleCore shows the agent's warnings and errors as readable lines.
func consoleCore(w io.Writer) zapcore.Core {
	// Locked: the agent logs from several goroutines at once, and w need not be safe for that.
	return zapcore.NewCore(zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()), zapcore.Lock(zapcore.AddSync(w)), zapcore.WarnLevel)
}

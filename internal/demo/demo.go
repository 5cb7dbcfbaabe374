// Package demo runs the agent on one machine against the Port API emulator: `port-runner
// demo` (this file) and `port-runner try` (try.go). Demo runs the whole loop: an in-process
// Kafka broker (kfake), the emulator, and the agent on the embedded example config. It
// triggers the seed's CREATE and DAY-2 runs plus one that fails, one with a secret input and
// one workflow node run, through the emulator's HTTP API as Port would, and prints each run
// as Port shows it.
package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/port-runner/port-runner/internal/agent"
	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/examples"
	"github.com/port-runner/port-runner/internal/portapi"
	"github.com/port-runner/port-runner/internal/runmsg"
)

const (
	orgID        = "org_demo"
	clientID     = "demo-client"
	clientSecret = "demo-client-secret-0123456789abcdef"
)

// trigger is one run the demo asks for, and how it must end.
type trigger struct {
	action     string
	properties map[string]any
	entity     string
	want       string // SUCCESS | FAILURE
	wantLabel  string
	// node: a workflow node run of workflow/node (Port Workflows' Kafka node), not an action run
	workflow, node string
}

var triggers = []trigger{
	{action: "create_microservice", properties: map[string]any{"name": "my-microservice", "region": "eu-west-1"},
		want: "SUCCESS", wantLabel: "Created my-microservice"},
	{action: "deploy_microservice", entity: "my-microservice", properties: map[string]any{"environment": "production"},
		want: "SUCCESS", wantLabel: "exit code 0"},
	{action: "deploy_microservice", entity: "my-microservice", properties: map[string]any{"environment": "moon"},
		want: "FAILURE", wantLabel: "exit code 3"},
	{action: "rotate_db_password", properties: map[string]any{"user": "billing", "password": demoSecretInput},
		want: "SUCCESS", wantLabel: "Password of billing rotated"},
	{workflow: "release", node: "build-image", properties: map[string]any{"service": "billing", "version": "1.4.2"},
		want: "SUCCESS"},
}

// demoSecretInput is the demo's secret input: Port encrypts it, the command gets it
// decrypted, and it never shows in the printed log.
const demoSecretInput = "s3cr3t-Pa55w0rd"

// Run runs the demo, printing to out and agent warnings and errors to logOut; an error unless
// every run ended as expected. commands: shim and reaper as under `run` (Logger: the demo's).
func Run(ctx context.Context, commands agent.Deps, out, logOut io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	dir, err := os.MkdirTemp("", "port-runner-demo-*")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := examples.Extract(dir); err != nil {
		return err
	}

	topic := orgID + ".runs"
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic))
	if err != nil {
		return fmt.Errorf("start in-process kafka: %w", err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()

	emu, baseURL, stopPort, err := startPort(ctx, brokers)
	if err != nil {
		return err
	}
	defer stopPort()

	cfg, err := demoConfig(dir, baseURL, brokers[0])
	if err != nil {
		return err
	}

	commands.Logger = zap.New(consoleCore(logOut))
	ag, err := agent.New(cfg, commands)
	if err != nil {
		return err
	}
	agentCtx, stopAgent := context.WithCancel(ctx)
	// Waiting for runs ends when the agent returns, so an agent that fails at start fails the
	// demo at once. agentErr is read only after wg.Wait.
	waitCtx, stopWaiting := context.WithCancel(ctx)
	defer stopWaiting()
	var agentErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		defer stopWaiting()
		agentErr = ag.Run(agentCtx, ctx)
	})
	defer func() { stopAgent(); wg.Wait() }()

	fmt.Fprintf(out, "port-runner demo: Kafka (in-process) %s, Port API emulator %s, actions from examples/config.yaml\n\n", brokers[0], baseURL)
	ids, err := triggerAll(ctx, baseURL)
	if err != nil {
		return err
	}

	var failed []string
	for i, tr := range triggers {
		run, err := emu.WaitRun(waitCtx, ids[i], func(r emulator.RunState) bool { return r.Status != "IN_PROGRESS" })
		if err != nil {
			stopAgent()
			wg.Wait()
			return fmt.Errorf("run %s (%s) did not end: %w (agent: %v)", ids[i], tr.action, err, agentErr)
		}
		printRun(out, run, tr)
		if run.Status != tr.want || run.StatusLabel != tr.wantLabel || run.Terminations != 1 {
			failed = append(failed, fmt.Sprintf("%s: got %s %q, want %s %q", run.ID, run.Status, run.StatusLabel, tr.want, tr.wantLabel))
		}
	}
	stopAgent()
	wg.Wait()
	if agentErr != nil {
		return fmt.Errorf("agent: %w", agentErr)
	}
	if len(failed) > 0 {
		return fmt.Errorf("runs did not end as expected:\n  %s", strings.Join(failed, "\n  "))
	}
	fmt.Fprintf(out, "All %d runs ended as expected.\n", len(triggers))
	return nil
}

// startPort serves the emulator on loopback, producing the runs it creates to the broker.
// stop ends it and closes its producer.
func startPort(ctx context.Context, brokers []string) (emu *emulator.Emulator, baseURL string, stop func(), err error) {
	producer, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, "", nil, fmt.Errorf("kafka producer: %w", err)
	}
	emu = emulator.New(emulator.Options{
		ClientID: clientID, ClientSecret: clientSecret, OrgID: orgID,
		SecretInputs: map[string][]string{"rotate_db_password": {"password"}},
		Produce: func(ctx context.Context, topic string, key, value []byte) error {
			return producer.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: key, Value: value}).FirstErr()
		},
	})
	emuCtx, stopEmu := context.WithCancel(ctx)
	srv, err := emu.Serve(emuCtx, "127.0.0.1:0")
	if err != nil {
		stopEmu()
		producer.Close()
		return nil, "", nil, fmt.Errorf("start port emulator: %w", err)
	}
	return emu, srv.URL(), func() { stopEmu(); _ = srv.Wait(); producer.Close() }, nil
}

// demoConfig is the embedded example config, pointed at the demo's broker and emulator.
func demoConfig(dir, baseURL, broker string) (*config.Config, error) {
	env := map[string]string{
		"PORT_BASE_URL": baseURL, "PORT_CLIENT_ID": clientID, "PORT_CLIENT_SECRET": clientSecret,
		"PORT_ORG_ID": orgID, "KAFKA_BROKERS": broker, "KAFKA_GROUP": orgID + ".port-runner-demo",
		"KAFKA_START_OFFSET": "earliest",
	}
	raw, err := fs.ReadFile(examples.FS, "config.yaml")
	if err != nil {
		return nil, fmt.Errorf("embedded config: %w", err)
	}
	cfg, err := config.Parse(raw, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		return nil, fmt.Errorf("embedded config: %w", err)
	}
	cfg.ResolveCommands(dir)
	// The same checks as `port-runner validate`, so the demo never runs a config users could not.
	if err := cfg.Validate(runmsg.CompileSelector, exec.LookPath); err != nil {
		return nil, fmt.Errorf("embedded config:\n%w", err)
	}
	cfg.Metrics.Addr = "-" // the demo's agent serves no metrics
	return cfg, nil
}

// triggerAll triggers every run of the demo as Port's UI would, with a token of its own.
func triggerAll(ctx context.Context, baseURL string) ([]string, error) {
	api, err := portapi.New(portapi.Options{BaseURL: baseURL, ClientID: clientID, ClientSecret: clientSecret})
	if err != nil {
		return nil, err
	}
	token, err := api.Token(ctx)
	if err != nil {
		return nil, fmt.Errorf("demo token: %w", err)
	}
	ids := make([]string, len(triggers))
	for i, tr := range triggers {
		id, err := createRun(ctx, baseURL, token, tr)
		if err != nil {
			return nil, err
		}
		ids[i] = id
	}
	return ids, nil
}

// createRun asks the emulator for a run over HTTP, the way Port's UI triggers one (a node
// run through the emulator's stand-in for a workflow reaching its Kafka node).
func createRun(ctx context.Context, baseURL, token string, tr trigger) (string, error) {
	var body []byte
	var err error
	url := baseURL + "/v1/actions/" + tr.action + "/runs"
	if tr.node != "" {
		body, err = json.Marshal(emulator.CreateNodeRunRequest{Payload: tr.properties})
		url = baseURL + "/v1/workflows/" + tr.workflow + "/nodes/" + tr.node + "/runs"
	} else {
		body, err = json.Marshal(emulator.CreateRunRequest{Properties: tr.properties, Entity: tr.entity})
	}
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("trigger %s: %w", tr.action, err)
	}
	defer resp.Body.Close()
	var out struct {
		OK  bool `json:"ok"`
		Run struct {
			ID string `json:"id"`
		} `json:"run"`
		NodeRun struct {
			Identifier string `json:"identifier"`
		} `json:"nodeRun"`
	}
	err = json.NewDecoder(resp.Body).Decode(&out)
	id := out.Run.ID + out.NodeRun.Identifier
	if err != nil || resp.StatusCode != http.StatusCreated || id == "" {
		return "", fmt.Errorf("trigger %s%s: status %d (%v)", tr.action, tr.node, resp.StatusCode, err)
	}
	return id, nil
}

// printRun renders a run like Port's run page: header, status with label, links, the log.
func printRun(out io.Writer, r emulator.RunState, tr trigger) {
	kind := "CREATE"
	if tr.entity != "" {
		kind = "DAY-2 on " + tr.entity
	}
	props, _ := json.Marshal(r.Properties)
	if r.NodeRun {
		payload, _ := json.Marshal(tr.properties)
		fmt.Fprintf(out, "━━ %s · workflow %s, node %s (workflow node run) · payload %s\n", r.ID, r.Workflow, r.Node, payload)
		output, _ := json.Marshal(r.Output)
		fmt.Fprintf(out, "   Status: COMPLETED · %s\n   Output: %s\n", r.Result, output)
	} else {
		fmt.Fprintf(out, "━━ %s · %s (%s) · inputs %s\n", r.ID, r.Action, kind, props)
		fmt.Fprintf(out, "   Status: %s · %s\n", r.Status, r.StatusLabel)
	}
	for _, l := range r.Link {
		fmt.Fprintf(out, "   Link: %s\n", l)
	}
	if r.Summary != "" {
		fmt.Fprintf(out, "   Summary: %s\n", r.Summary)
	}
	fmt.Fprintln(out, "   Log:")
	for _, e := range r.Logs {
		for _, line := range strings.Split(e.Message, "\n") {
			fmt.Fprintf(out, "     %s  %s\n", e.CreatedAt.Format("15:04:05.000"), line)
		}
	}
	fmt.Fprintln(out)
}

package e2e_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"go.uber.org/zap/zapcore"

	"github.com/port-runner/port-runner/internal/agent"
	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/metrics"
	"github.com/port-runner/port-runner/test/harness"
)

// quickLogs is the suite's flush interval: its runs' logs reach Port within 100ms.
const quickLogs = "logs: {flushInterval: 100ms}\n"

// logText is a run's log in Port.
func logText(r emulator.RunState) string {
	var b strings.Builder
	for _, l := range r.Logs {
		b.WriteString(l.Message + "\n")
	}
	return b.String()
}

// A workflow node run (Port Workflows' Kafka node) goes to the action whose workflowNode
// matches it, reports through the workflow node run API, and completes once with the
// command's outputs: ::port-output:: lines on top of $PORT_OUTPUT_FILE.
func TestWorkflowNodeRun(t *testing.T) {
	h := harness.New(t, 1)
	script := harness.Script(t, `set -eu
echo "building $IMAGE for node $PORT_ACTION"
echo "::port-output::image=registry.example.com/$IMAGE:v1"
printf '{"digest":"sha256:abc","image":"overridden by the line"}' > "$PORT_OUTPUT_FILE"
`)
	other := harness.Script(t, "echo wrong command; exit 9\n")
	cfg := h.Config(t, quickLogs+fmt.Sprintf(`actions:
  build_image:
    command: [%q]
    env: {IMAGE: .properties.image}
    workflowNode: {url: %q}
  deploy:
    command: [%q]
    workflowNode: {url: %q}
`, script, emulator.NodeURL("ci", "build"), other, emulator.NodeURL("ci", "deploy")))
	a := h.Start(t, cfg)
	nr, err := h.Emu.CreateNodeRun(context.Background(), "ci", "build", emulator.CreateNodeRunRequest{Payload: map[string]any{"image": "api"}})
	if err != nil {
		t.Fatal(err)
	}
	run := h.WaitClosed(t, nr.ID)
	if run.Status != "SUCCESS" || run.Result != "SUCCESS" || run.Terminations != 1 || run.RejectedTerminations != 0 {
		t.Fatalf("node run %+v\nlog:\n%s", run, logText(run))
	}
	if run.Output["image"] != "registry.example.com/api:v1" || run.Output["digest"] != "sha256:abc" {
		t.Fatalf("output %v", run.Output)
	}
	if log := logText(run); !strings.Contains(log, "building api for node build_image") || strings.Contains(log, "::port-output::") {
		t.Fatalf("log:\n%s", log)
	}
	// A failing command fails its node; a node run no workflowNode matches is not ours.
	failing, err := h.Emu.CreateNodeRun(context.Background(), "ci", "deploy", emulator.CreateNodeRunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Emu.CreateNodeRun(context.Background(), "other-workflow", "build", emulator.CreateNodeRunRequest{}); err != nil {
		t.Fatal(err)
	}
	if fr := h.WaitClosed(t, failing.ID); fr.Result != "FAILED" || !strings.Contains(logText(fr), "port-runner: exit code 9") {
		t.Fatalf("failing node run %+v\n%s", fr, logText(fr))
	}
	// Counted and logged at warn, so a node run no command takes never vanishes silently (the
	// warning comes after the count).
	warned := func() int {
		return a.Logs.FilterLevelExact(zapcore.WarnLevel).FilterMessageSnippet("matches no action's workflowNode").Len()
	}
	waitcond.For(t, "the unmatched node run to be logged at warn", 30*time.Second, func() bool { return warned() >= 1 })
	if n := testutil.ToFloat64(h.Metrics.MessagesTotal.WithLabelValues(metrics.OutcomeUnmatched)); n != 1 || warned() != 1 {
		t.Fatalf("messages_total{unmatched} = %v, %d warnings: want 1 and 1", n, warned())
	}
	// It went through the node run API only.
	for _, r := range h.Emu.Requests() {
		if strings.Contains(r.Path, nr.ID) && !strings.HasPrefix(r.Path, "/v1/workflows/nodes/runs/") {
			t.Fatalf("%s %s: a node run reported as an action run", r.Method, r.Path)
		}
	}
}

// A secret input arrives encrypted; the command gets the plaintext (env and run file), Port's
// log shows it masked, and no agent log line carries it. A value that does not decrypt
// fails its run with a label that names the input and not the value.
func TestSecretInput(t *testing.T) {
	const password = "pw-Zq8-very-secret"
	h := harness.New(t, 1, harness.WithPort(func(o *emulator.Options) {
		o.SecretInputs = map[string][]string{"rotate_password": {"password"}}
	}))
	dir := t.TempDir()
	seen := filepath.Join(dir, "seen")
	script := harness.Script(t, fmt.Sprintf(`set -eu
printf '%%s' "$NEW_PASS" > %q
grep -q '"password":"%s"' "$PORT_RUN_FILE" && echo "run file has it"
echo "rotating $USERNAME with $NEW_PASS"
`, seen, password))
	cfg := h.Config(t, quickLogs+fmt.Sprintf(`actions:
  rotate_password:
    command: [%q]
    env: {NEW_PASS: .properties.password, USERNAME: .properties.user}
`, script))
	a := h.Start(t, cfg)
	created, err := h.Emu.CreateRun(context.Background(), "rotate_password", emulator.CreateRunRequest{
		Properties: map[string]any{"user": "app", "password": password}})
	if err != nil {
		t.Fatal(err)
	}
	run := h.WaitClosed(t, created.ID)
	log := logText(run)
	if run.Status != "SUCCESS" {
		t.Fatalf("run %s %q\n%s", run.Status, run.StatusLabel, log)
	}
	if got, _ := os.ReadFile(seen); string(got) != password {
		t.Fatalf("the command got %q, want the decrypted value", got)
	}
	if !strings.Contains(log, "rotating app with ***") || !strings.Contains(log, "run file has it") || strings.Contains(log, password) {
		t.Fatalf("log in Port:\n%s", log)
	}

	// A value that does not decrypt (another org's secret, say).
	bad := h.Sign(t, fmt.Sprintf(
		`{"action":"rotate_password","context":{"runId":"r_badsecret"},"payload":{"action":{"userInputs":{"properties":{"password":{"type":"string","encryption":"aes256-gcm"}}}},"properties":{"password":%q}}}`,
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))
	h.Emu.RegisterRun("r_badsecret", "rotate_password")
	h.Produce(t, []byte("r_badsecret"), bad)
	failed := h.WaitClosed(t, "r_badsecret")
	if failed.Status != "FAILURE" || !strings.Contains(failed.StatusLabel, `secret input "password"`) {
		t.Fatalf("bad secret: %s %q", failed.Status, failed.StatusLabel)
	}
	if text := a.LogText(); strings.Contains(text, password) {
		t.Fatalf("an agent log line carries the secret:\n%s", text)
	}
}

// A synchronous action's command writes its response to $PORT_RESPONSE_FILE; the response
// reaches Port before the run's termination (the emulator refuses it after).
func TestSynchronousResponse(t *testing.T) {
	h := harness.New(t, 1, harness.WithPort(func(o *emulator.Options) { o.Synchronous = []string{"lookup"} }))
	script := harness.Script(t, `set -eu
echo "looking up $NAME"
printf '{"owner":"team-%s","token":"%s"}' "$NAME" "$API_TOKEN" > "$PORT_RESPONSE_FILE"
`)
	cfg := h.Config(t, quickLogs+fmt.Sprintf(`actions:
  lookup:
    command: [%q]
    env: {NAME: .properties.name, API_TOKEN: '"tok-hidden-42"'}
`, script))
	h.Start(t, cfg)
	created, err := h.Emu.CreateRun(context.Background(), "lookup", emulator.CreateRunRequest{Properties: map[string]any{"name": "billing"}})
	if err != nil {
		t.Fatal(err)
	}
	run := h.WaitClosed(t, created.ID)
	resp, _ := run.Response.(map[string]any)
	if run.Status != "SUCCESS" || resp["owner"] != "team-billing" || resp["token"] != "***" {
		t.Fatalf("run %s, response %v\n%s", run.Status, run.Response, logText(run))
	}
	var order []string
	var ri, ci int
	// The emulator ends a run just before it records the request that ended it: wait for
	// the closing's record, then judge the order.
	waitcond.For(t, "the closing request recorded", 10*time.Second, func() bool {
		order = nil
		for _, r := range h.Emu.Requests() {
			if strings.HasPrefix(r.Path, "/v1/actions/runs/"+created.ID) && r.Method != "GET" {
				what := r.Method + " " + strings.TrimPrefix(r.Path, "/v1/actions/runs/"+created.ID)
				if strings.Contains(string(r.Body), "terminationStatus") {
					what = "closing"
				}
				order = append(order, fmt.Sprintf("%s %d", what, r.Status))
			}
		}
		ri, ci = slices.Index(order, "PATCH /response 200"), slices.Index(order, "closing 200")
		return ci >= 0
	})
	if ri < 0 || ri > ci {
		t.Fatalf("requests %v: want the response accepted before the closing", order)
	}
}

// Configured with only Port credentials (no kafka.brokers), the agent gets the brokers and
// SCRAM credentials from GET /v1/kafka-credentials and consumes with them, the password
// masked in runs' logs as a configured one is. On the real broker
// fixture's SASL_SSL listener it uses that; otherwise an in-process broker with SCRAM.
func TestKafkaCredentialsFromPort(t *testing.T) {
	brokers, user, pass, caFile, real := harness.SASL(t)
	var broker *harness.Broker
	// Port's credentials only, not the broker fixture's.
	agentOpts := []harness.AgentOption{harness.KafkaOpts()}
	tlsYAML := ""
	if real {
		opts, err := harness.SASLOpts(os.Getenv(harness.EnvSASLMechanism), user, pass, caFile)
		if err != nil {
			t.Fatal(err)
		}
		broker = &harness.Broker{Brokers: brokers, Opts: opts, Kind: harness.KindExternal}
		tlsYAML = fmt.Sprintf("tls: {caFile: %q}", caFile)
	} else {
		user, pass = "port-user", "port-pass-1234"
		kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", user, pass))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(kc.Close)
		broker = &harness.Broker{Brokers: kc.ListenAddrs(), Kind: harness.KindKfake,
			Opts: []kgo.Opt{kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism())}}
		brokers = kc.ListenAddrs()
		// The in-process broker has no TLS; Port's has.
		agentOpts = append(agentOpts, harness.With(agent.WithPlaintextKafkaFromPort()))
	}
	h := harness.New(t, 1, harness.WithBroker(broker), harness.WithPort(func(o *emulator.Options) {
		o.KafkaCredentials = &emulator.KafkaCredentials{Brokers: brokers, Username: user, Password: pass}
	}))
	// The command is handed the password (as a config could, by mistake) and prints it: the
	// run's log masks it, as it masks kafka.sasl.password.
	script := harness.Script(t, "echo consumed with credentials from Port\necho \"kafka password: $P\"\n")
	cfg := h.Config(t, quickLogs+fmt.Sprintf(`kafka: {brokers: null, group: null, %s}
actions:
  create_microservice:
    command: [%q]
    env: {P: '"%s"'}
`, tlsYAML, script, pass))
	if cfg.Kafka.Group != "" || !cfg.Kafka.FromPort() {
		t.Fatalf("kafka config %+v", cfg.Kafka)
	}
	a := h.Start(t, cfg, agentOpts...)
	created, err := h.Emu.CreateRun(context.Background(), "create_microservice", emulator.CreateRunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if run := h.WaitClosed(t, created.ID); run.Status != "SUCCESS" || !strings.Contains(logText(run), "consumed with credentials from Port") ||
		!strings.Contains(logText(run), "kafka password: ***") || strings.Contains(logText(run), pass) {
		t.Fatalf("run %s, want SUCCESS and the Kafka password masked:\n%s", run.Status, logText(run))
	}
	if n := testutil.ToFloat64(h.Metrics.PortRequests.WithLabelValues("kafka_credentials", "200")); n != 1 {
		t.Fatalf("kafka-credentials requests: %v", n)
	}
	if text := a.LogText(); strings.Contains(text, pass) {
		t.Fatalf("an agent log line carries the Kafka password:\n%s", text)
	}
}

// An unsigned message of a configured action is an error naming the setting, and counted.
func TestUnsignedMessageIsLoud(t *testing.T) {
	h := harness.New(t, 1)
	cfg := h.Config(t, quickLogs+fmt.Sprintf("actions:\n  create_microservice: {command: [%q]}\n", harness.Script(t, "exit 0\n")))
	a := h.Start(t, cfg)
	for _, id := range []string{"r_unsigned1", "r_unsigned2"} {
		h.Produce(t, nil, []byte(harness.RunMessage(id, "create_microservice")))
	}
	h.Produce(t, nil, []byte(`{"action":"not_here","context":{"runId":"r_other"},"payload":{}}`))
	// Handlers of one partition end in any order, and each counts a message before it logs
	// it: wait until all three unsigned messages were skipped, counted and logged, not for
	// a run produced after them.
	skipped := h.Metrics.MessagesTotal.WithLabelValues(metrics.OutcomeBadSignature)
	var levels []string
	waitcond.For(t, "the unsigned messages to be skipped, counted and logged", 30*time.Second, func() bool {
		levels = levels[:0]
		for _, e := range a.Logs.FilterMessageSnippet("security.verifySignature").All() {
			levels = append(levels, e.Level.String())
		}
		return testutil.ToFloat64(skipped) >= 3 && testutil.ToFloat64(h.Metrics.UnsignedMessages) >= 2 && len(levels) >= 2
	})
	if n := testutil.ToFloat64(skipped); n != 3 {
		t.Fatalf("messages_total{bad_signature} = %v, want 3", n)
	}
	if n := testutil.ToFloat64(h.Metrics.UnsignedMessages); n != 2 {
		t.Fatalf("unsigned_messages_total = %v, want 2 (the other action's is not ours)", n)
	}
	// Which of the two messages gets the error is a race; that one does, and one only, is not.
	slices.Sort(levels)
	if strings.Join(levels, ",") != "error,warn" {
		t.Fatalf("log lines naming the setting by level: %v, want one error and one warn", levels)
	}
}

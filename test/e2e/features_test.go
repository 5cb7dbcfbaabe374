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
	"github.com/port-runner/port-runner/internal/runmsg"
	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/metrics"
	"github.com/port-runner/port-runner/test/kafkatest"
)

// A workflow node run (Port Workflows' Kafka node) goes to the action whose workflowNode
// matches it, reports through the workflow node run API, and completes once with the
// command's outputs: ::port-output:: lines on top of $PORT_OUTPUT_FILE.
func TestWorkflowNodeRun(t *testing.T) {
	h := newHarness(t, nil)
	script := writeScript(t, `set -eu
echo "building $IMAGE for node $PORT_ACTION"
echo "::port-output::image=registry.example.com/$IMAGE:v1"
printf '{"digest":"sha256:abc","image":"overridden by the line"}' > "$PORT_OUTPUT_FILE"
`)
	other := writeScript(t, "echo wrong command; exit 9\n")
	cfg := h.config(t, fmt.Sprintf(`
  build_image:
    command: [%q]
    env: {IMAGE: .properties.image}
    workflowNode: {url: %q}
  deploy:
    command: [%q]
    workflowNode: {url: %q}
`, script, emulator.NodeURL("ci", "build"), other, emulator.NodeURL("ci", "deploy")))
	h.start(t, cfg, agent.Deps{})
	nr, err := h.emu.CreateNodeRun(context.Background(), "ci", "build", emulator.CreateNodeRunRequest{Payload: map[string]any{"image": "api"}})
	if err != nil {
		t.Fatal(err)
	}
	run := h.waitEnded(t, nr.ID)
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
	failing, err := h.emu.CreateNodeRun(context.Background(), "ci", "deploy", emulator.CreateNodeRunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.emu.CreateNodeRun(context.Background(), "other-workflow", "build", emulator.CreateNodeRunRequest{}); err != nil {
		t.Fatal(err)
	}
	if fr := h.waitEnded(t, failing.ID); fr.Result != "FAILED" || !strings.Contains(logText(fr), "port-runner: exit code 9") {
		t.Fatalf("failing node run %+v\n%s", fr, logText(fr))
	}
	// Counted and logged at warn, so a node run no command takes never vanishes silently.
	unmatched := h.metrics.MessagesTotal.WithLabelValues(metrics.OutcomeUnmatched)
	waitcond.For(t, "the unmatched node run to be counted", 30*time.Second, func() bool { return testutil.ToFloat64(unmatched) >= 1 })
	if n := testutil.ToFloat64(unmatched); n != 1 {
		t.Fatalf("messages_total{unmatched} = %v, want 1", n)
	}
	if warned := h.logs.FilterLevelExact(zapcore.WarnLevel).FilterMessageSnippet("matches no action's workflowNode").Len(); warned != 1 {
		t.Fatalf("%d warnings about the unmatched node run, want 1", warned)
	}
	// It went through the node run API only.
	for _, r := range h.emu.Requests() {
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
	h := newHarness(t, func(o *emulator.Options) {
		o.SecretInputs = map[string][]string{"rotate_password": {"password"}}
	})
	dir := t.TempDir()
	seen := filepath.Join(dir, "seen")
	script := writeScript(t, fmt.Sprintf(`set -eu
printf '%%s' "$NEW_PASS" > %q
grep -q '"password":"%s"' "$PORT_RUN_FILE" && echo "run file has it"
echo "rotating $USERNAME with $NEW_PASS"
`, seen, password))
	cfg := h.config(t, fmt.Sprintf(`
  rotate_password:
    command: [%q]
    env: {NEW_PASS: .properties.password, USERNAME: .properties.user}
`, script))
	h.start(t, cfg, agent.Deps{})
	created, err := h.emu.CreateRun(context.Background(), "rotate_password", emulator.CreateRunRequest{
		Properties: map[string]any{"user": "app", "password": password}})
	if err != nil {
		t.Fatal(err)
	}
	run := h.waitEnded(t, created.ID)
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
	bad, err := runmsg.Sign(secret, time.Now().Unix(), []byte(fmt.Sprintf(
		`{"action":"rotate_password","context":{"runId":"r_badsecret"},"payload":{"action":{"userInputs":{"properties":{"password":{"type":"string","encryption":"aes256-gcm"}}}},"properties":{"password":%q}}}`,
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")))
	if err != nil {
		t.Fatal(err)
	}
	h.emu.RegisterRun("r_badsecret", "rotate_password")
	h.cluster.Produce(t, h.topic, []byte("r_badsecret"), bad)
	failed := h.waitEnded(t, "r_badsecret")
	if failed.Status != "FAILURE" || !strings.Contains(failed.StatusLabel, `secret input "password"`) {
		t.Fatalf("bad secret: %s %q", failed.Status, failed.StatusLabel)
	}
	if text := h.agentLogText(); strings.Contains(text, password) {
		t.Fatalf("an agent log line carries the secret:\n%s", text)
	}
}

// A synchronous action's command writes its response to $PORT_RESPONSE_FILE; the response
// reaches Port before the run's termination (the emulator refuses it after).
func TestSynchronousResponse(t *testing.T) {
	h := newHarness(t, func(o *emulator.Options) { o.Synchronous = []string{"lookup"} })
	script := writeScript(t, `set -eu
echo "looking up $NAME"
printf '{"owner":"team-%s","token":"%s"}' "$NAME" "$API_TOKEN" > "$PORT_RESPONSE_FILE"
`)
	cfg := h.config(t, fmt.Sprintf(`
  lookup:
    command: [%q]
    env: {NAME: .properties.name, API_TOKEN: '"tok-hidden-42"'}
`, script))
	h.start(t, cfg, agent.Deps{})
	created, err := h.emu.CreateRun(context.Background(), "lookup", emulator.CreateRunRequest{Properties: map[string]any{"name": "billing"}})
	if err != nil {
		t.Fatal(err)
	}
	run := h.waitEnded(t, created.ID)
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
		for _, r := range h.emu.Requests() {
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
// SCRAM credentials from GET /v1/kafka-credentials and consumes with them. On the real broker
// fixture's SASL_SSL listener it uses that; otherwise an in-process broker with SCRAM.
func TestKafkaCredentialsFromPort(t *testing.T) {
	brokers, user, pass, caFile, real := kafkatest.SASL(t)
	var cluster *kafkatest.Cluster
	deps := agent.Deps{KafkaOpts: []kgo.Opt{}} // Port's credentials only, not the fixture's
	tlsYAML := ""
	if real {
		opts, err := kafkatest.SASLOpts(os.Getenv(kafkatest.EnvSASLMechanism), user, pass, caFile)
		if err != nil {
			t.Fatal(err)
		}
		cluster = &kafkatest.Cluster{Brokers: brokers, Opts: opts, Kind: kafkatest.KindExternal}
		tlsYAML = fmt.Sprintf(", tls: {caFile: %q}", caFile)
	} else {
		user, pass = "port-user", "port-pass-1234"
		kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", user, pass))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(kc.Close)
		cluster = &kafkatest.Cluster{Brokers: kc.ListenAddrs(), Kind: kafkatest.KindKfake,
			Opts: []kgo.Opt{kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism())}}
		brokers = kc.ListenAddrs()
		deps.KafkaPlaintext = true // the in-process broker has no TLS; Port's has
	}
	h := newHarnessOn(t, cluster, func(o *emulator.Options) {
		o.KafkaCredentials = &emulator.KafkaCredentials{Brokers: brokers, Username: user, Password: pass}
	})
	script := writeScript(t, "echo consumed with credentials from Port\n")
	cfg := h.configWith(t, fmt.Sprintf(`{topic: %q, startOffset: earliest%s}`, h.topic, tlsYAML), fmt.Sprintf(`
  create_microservice:
    command: [%q]
`, script))
	if cfg.Kafka.Group != "" || !cfg.Kafka.FromPort() {
		t.Fatalf("kafka config %+v", cfg.Kafka)
	}
	h.start(t, cfg, deps)
	created, err := h.emu.CreateRun(context.Background(), "create_microservice", emulator.CreateRunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if run := h.waitEnded(t, created.ID); run.Status != "SUCCESS" || !strings.Contains(logText(run), "consumed with credentials from Port") {
		t.Fatalf("run %s\n%s", run.Status, logText(run))
	}
	if n := testutil.ToFloat64(h.metrics.PortRequests.WithLabelValues("kafka_credentials", "200")); n != 1 {
		t.Fatalf("kafka-credentials requests: %v", n)
	}
	if text := h.agentLogText(); strings.Contains(text, pass) {
		t.Fatalf("an agent log line carries the Kafka password:\n%s", text)
	}
}

// An unsigned message of a configured action is an error naming the setting, and counted.
func TestUnsignedMessageIsLoud(t *testing.T) {
	h := newHarness(t, nil)
	cfg := h.config(t, fmt.Sprintf("  create_microservice: {command: [%q]}\n", writeScript(t, "exit 0\n")))
	h.start(t, cfg, agent.Deps{})
	for _, id := range []string{"r_unsigned1", "r_unsigned2"} {
		h.cluster.Produce(t, h.topic, nil, []byte(fmt.Sprintf(`{"action":"create_microservice","context":{"runId":%q},"payload":{"properties":{}}}`, id)))
	}
	h.cluster.Produce(t, h.topic, nil, []byte(`{"action":"not_here","context":{"runId":"r_other"},"payload":{}}`))
	// Handlers of one partition end in any order, and each counts a message before it logs
	// it: wait until all three unsigned messages were skipped, counted and logged, not for
	// a run produced after them.
	skipped := h.metrics.MessagesTotal.WithLabelValues(metrics.OutcomeBadSignature)
	var levels []string
	waitcond.For(t, "the unsigned messages to be skipped, counted and logged", 30*time.Second, func() bool {
		levels = levels[:0]
		for _, e := range h.logs.FilterMessageSnippet("security.verifySignature").All() {
			levels = append(levels, e.Level.String())
		}
		return testutil.ToFloat64(skipped) >= 3 && testutil.ToFloat64(h.metrics.UnsignedMessages) >= 2 && len(levels) >= 2
	})
	if n := testutil.ToFloat64(skipped); n != 3 {
		t.Fatalf("messages_total{bad_signature} = %v, want 3", n)
	}
	if n := testutil.ToFloat64(h.metrics.UnsignedMessages); n != 2 {
		t.Fatalf("unsigned_messages_total = %v, want 2 (the other action's is not ours)", n)
	}
	// Which of the two messages gets the error is a race; that one does, and one only, is not.
	slices.Sort(levels)
	if strings.Join(levels, ",") != "error,warn" {
		t.Fatalf("log lines naming the setting by level: %v, want one error and one warn", levels)
	}
}

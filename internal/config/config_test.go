package config

import (
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/runmsg"
)

// env returns a LookupFunc over a fixed map, so tests never depend on the process environment.
func env(m map[string]string) LookupFunc {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

var noEnv = env(nil)

var specEnv = map[string]string{
	"PORT_CLIENT_ID":     "cid",
	"PORT_CLIENT_SECRET": "csecret",
	"PORT_ORG_ID":        "org_123",
	"KAFKA_USERNAME":     "kuser",
	"KAFKA_PASSWORD":     "kpass",
	"SOME_TOKEN":         "tok-123",
}

func readSpec(t testing.TB) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "spec.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func mustParse(t *testing.T, yml string, lookup LookupFunc) *Config {
	t.Helper()
	c, err := Parse([]byte(yml), lookup)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, yml)
	}
	return c
}

func TestParseSpecExample(t *testing.T) {
	c, err := Parse(readSpec(t), env(specEnv))
	if err != nil {
		t.Fatal(err)
	}
	tru := true
	want := &Config{
		Port: Port{BaseURL: "https://api.getport.io", ClientID: "cid", ClientSecret: "csecret",
			OrgID: "org_123", RequestsPerSecond: 20, RunStatusInterval: Duration(30 * time.Second)},
		Transport: TransportKafka,
		Polling:   Polling{Interval: Duration(10 * time.Second), VisibilityTimeout: Duration(time.Minute), SweepInterval: Duration(time.Minute)},
		Kafka: Kafka{
			Brokers: []string{"b-1.example:9196"}, Topic: "org_123.runs", Group: "",
			StartOffset: "latest", GroupProtocol: "classic",
			SASL:                    SASL{Mechanism: "SCRAM-SHA-512", Username: "kuser", Password: "kpass"},
			TLS:                     TLS{Enabled: true},
			SessionTimeout:          Duration(15 * time.Second),
			MaxDecompressBatchBytes: 16 << 20,
		},
		Security: Security{VerifySignature: &tru, Mask: []string{"tok-123"}, RunIsolation: "process", MaxMessageAge: Duration(10 * time.Minute)},
		Executor: Executor{MaxConcurrent: 8, ShutdownTimeout: Duration(60 * time.Second), Sandbox: SandboxAuto, Limits: Limits{Processes: DefaultProcesses}},
		Logs:     Logs{FlushInterval: Duration(time.Second), MaxBatchBytes: 64 << 10, MaxBytesPerRun: 4 << 20},
		Metrics:  Metrics{Addr: ":9464"},
		Message:  Message{RunID: ".context.runId", Action: ".action", Properties: ".payload.properties", Entity: ".payload.entity"},
		Actions: map[string]Action{"create_microservice": {
			Command:       []string{"./examples/scripts/create-service.sh"},
			Env:           map[string]string{"SERVICE_NAME": ".properties.name", "REGION": ".properties.region"},
			Timeout:       Duration(10 * time.Minute),
			MaxConcurrent: 2,
			OnInterrupted: "fail",
			When:          `.payload.properties.cluster == "eu"`,
		}},
		WorkflowNodeRuns: WorkflowNodeRuns{Unmatched: "leave"},
	}
	parsed := *c
	parsed.fromEnv = nil // which values ${VAR} filled: kept for problems, not a setting
	if !reflect.DeepEqual(&parsed, want) {
		t.Errorf("spec example:\n got %+v\nwant %+v", &parsed, want)
	}
	// The spec example leaves kafka.group empty on purpose: validation must say so, and only that
	// (the command is checked with a lookPath that accepts it).
	err = c.Validate(runmsg.CompileSelector, func(string) (string, error) { return "/bin/true", nil })
	if err == nil || !strings.Contains(err.Error(), "kafka.group") {
		t.Fatalf("Validate(spec example) = %v, want a kafka.group problem", err)
	}
	if ps := err.(Problems); len(ps) != 1 {
		t.Errorf("want exactly one problem, got %d:\n%v", len(ps), err)
	}
}

func TestDefaults(t *testing.T) {
	for _, tc := range []struct {
		name, yml string
	}{
		{"empty file", ""},
		{"comment only", "# nothing\n"},
		{"null document", "---\n"},
		{"minimal", "port: {orgID: org_9}\nactions:\n  a:\n    command: [bash]\n"},
		{"empty sections", "port:\nkafka:\nsecurity:\nexecutor:\nlogs:\nmetrics:\nmessage:\nactions:\n  a: {command: [bash]}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, tc.yml, noEnv)
			checks := []struct {
				name      string
				got, want any
			}{
				{"port.baseURL", c.Port.BaseURL, "https://api.getport.io"},
				{"port.requestsPerSecond", c.Port.RequestsPerSecond, 20.0},
				{"kafka.startOffset", c.Kafka.StartOffset, "latest"},
				{"kafka.groupProtocol", c.Kafka.GroupProtocol, "classic"},
				{"security.verifySignature", c.Security.Verify(), true},
				{"security.runIsolation", c.Security.RunIsolation, "process"},
				{"executor.maxConcurrent", c.Executor.MaxConcurrent, 8},
				{"kafka.sessionTimeout", c.Kafka.SessionTimeout.D(), 15 * time.Second},
				{"fence", c.Kafka.Fence(), 10 * time.Second},
				{"kafka.maxDecompressBatchBytes", c.Kafka.MaxDecompressBatchBytes, ByteSize(16 << 20)},
				{"security.maxMessageAge", c.Security.MaxMessageAge.D(), 10 * time.Minute},
				{"drain", c.Drain(ClosingBudget), 130 * time.Second},
				{"lease bound", c.LeaseBound(ClosingBudget), 150 * time.Second},
				{"executor.shutdownTimeout", c.Executor.ShutdownTimeout.D(), 60 * time.Second},
				{"logs.flushInterval", c.Logs.FlushInterval.D(), time.Second},
				{"logs.maxBatchBytes", c.Logs.MaxBatchBytes, ByteSize(64 << 10)},
				{"logs.maxBytesPerRun", c.Logs.MaxBytesPerRun, ByteSize(4 << 20)},
				{"metrics.addr", c.Metrics.Addr, ":9464"},
				{"message.runId", c.Message.RunID, ".context.runId"},
				{"message.action", c.Message.Action, ".action"},
				{"message.properties", c.Message.Properties, ".payload.properties"},
				{"message.entity", c.Message.Entity, ".payload.entity"},
			}
			for _, ch := range checks {
				if !reflect.DeepEqual(ch.got, ch.want) {
					t.Errorf("%s = %#v, want %#v", ch.name, ch.got, ch.want)
				}
			}
			for name, a := range c.Actions {
				if a.OnInterrupted != "fail" {
					t.Errorf("actions.%s.onInterrupted = %q, want fail", name, a.OnInterrupted)
				}
			}
			wantTopic := ""
			if c.Port.OrgID != "" {
				wantTopic = c.Port.OrgID + ".runs"
			}
			if c.Kafka.Topic != wantTopic {
				t.Errorf("kafka.topic = %q, want %q", c.Kafka.Topic, wantTopic)
			}
		})
	}
}

func TestExplicitValuesOverrideDefaults(t *testing.T) {
	c := mustParse(t, `
port: {orgID: o, baseURL: "http://localhost:8080", requestsPerSecond: 2.5}
kafka: {topic: custom, startOffset: earliest, groupProtocol: consumer}
security: {verifySignature: false}
executor: {maxConcurrent: 3, shutdownTimeout: 5m}
logs: {flushInterval: 250ms, maxBatchBytes: 1000, maxBytesPerRun: 1MiB}
metrics: {addr: "127.0.0.1:1"}
message: {runId: .id, action: .a, properties: .p, entity: .e}
actions:
  a: {command: [bash], onInterrupted: rerun}
`, noEnv)
	if c.Port.BaseURL != "http://localhost:8080" || c.Port.RequestsPerSecond != 2.5 ||
		c.Kafka.Topic != "custom" || c.Kafka.StartOffset != "earliest" || c.Kafka.GroupProtocol != "consumer" ||
		c.Security.Verify() || c.Executor.MaxConcurrent != 3 || c.Executor.ShutdownTimeout.D() != 5*time.Minute ||
		c.Logs.FlushInterval.D() != 250*time.Millisecond || c.Logs.MaxBatchBytes != 1000 || c.Logs.MaxBytesPerRun != 1<<20 ||
		c.Metrics.Addr != "127.0.0.1:1" || c.Message != (Message{".id", ".a", ".p", ".e"}) ||
		c.Actions["a"].OnInterrupted != "rerun" {
		t.Errorf("explicit values not kept: %+v", c)
	}
}

func TestExpansion(t *testing.T) {
	vars := map[string]string{
		"SET":     "value",
		"EMPTY":   "",
		"B1":      "b-1:9092",
		"B2":      "b-2:9092",
		"N":       "5",
		"RPS":     "7.5",
		"NO":      "false",
		"YAMLISH": "a: b # c",
		"QUOTES":  `he said "hi" and 'bye'`,
		"NEWLINE": "x\nclientSecret: injected",
		"FLOW":    "{clientSecret: injected}",
		"LIST":    "[x, y]",
		"NUMSTR":  "12345",
		"NULLSTR": "null",
		"KEY":     "clientSecret",
		"REF":     "${SET}",
	}
	for _, tc := range []struct {
		name string
		yml  string
		get  func(*Config) any
		want any
	}{
		{"set", "port: {clientID: ${SET}}", func(c *Config) any { return c.Port.ClientID }, "value"},
		{"set in text", "port: {clientID: pre-${SET}-post}", func(c *Config) any { return c.Port.ClientID }, "pre-value-post"},
		{"two vars", "port: {clientID: ${SET}/${N}}", func(c *Config) any { return c.Port.ClientID }, "value/5"},
		{"unset", "port: {clientID: ${UNSET}}", func(c *Config) any { return c.Port.ClientID }, ""},
		{"unset quoted", `port: {clientID: "${UNSET}"}`, func(c *Config) any { return c.Port.ClientID }, ""},
		{"unset with default", "port: {clientID: ${UNSET:-dflt}}", func(c *Config) any { return c.Port.ClientID }, "dflt"},
		{"set with default", "port: {clientID: ${SET:-dflt}}", func(c *Config) any { return c.Port.ClientID }, "value"},
		{"empty with default", "port: {clientID: ${EMPTY:-dflt}}", func(c *Config) any { return c.Port.ClientID }, "dflt"},
		{"empty without default", "port: {clientID: x${EMPTY}y}", func(c *Config) any { return c.Port.ClientID }, "xy"},
		{"empty default", "port: {clientID: a${UNSET:-}b}", func(c *Config) any { return c.Port.ClientID }, "ab"},
		{"default with spaces", `port: {clientID: "${UNSET:-a b c}"}`, func(c *Config) any { return c.Port.ClientID }, "a b c"},
		{"no recursive expansion", "port: {clientID: ${REF}}", func(c *Config) any { return c.Port.ClientID }, "${SET}"},
		{"placeholder-like text untouched", "port: {clientID: portrunnerref0q, clientSecret: ${SET}}", func(c *Config) any { return c.Port.ClientID + "|" + c.Port.ClientSecret }, "portrunnerref0q|value"},
		{"same var twice", "port: {clientID: ${SET}, clientSecret: \"${SET}\"}", func(c *Config) any { return c.Port.ClientID + "|" + c.Port.ClientSecret }, "value|value"},
		{"in a comment", "port: {clientID: x} # ${SET} {\n", func(c *Config) any { return c.Port.ClientID }, "x"},
		{"in a block scalar", "actions:\n  a:\n    command:\n      - sh\n      - -c\n      - |\n        echo ${SET}\n", func(c *Config) any { return c.Actions["a"].Command[2] }, "echo value\n"},
		{"spec flow mapping", "kafka:\n  sasl: {mechanism: PLAIN, username: ${SET}, password: ${N}}\n", func(c *Config) any { return c.Kafka.SASL }, SASL{Mechanism: "PLAIN", Username: "value", Password: "5"}},
		{"flow list", "kafka: {brokers: [${B1}, \"${B2}\", \"${UNSET:-b-3:9092}\"]}",
			func(c *Config) any { return c.Kafka.Brokers }, []string{"b-1:9092", "b-2:9092", "b-3:9092"}},
		{"block list", "kafka:\n  brokers:\n    - ${B1}\n    - ${B2}\n",
			func(c *Config) any { return c.Kafka.Brokers }, []string{"b-1:9092", "b-2:9092"}},
		{"mask list drops empty", `security: {mask: ["${SET}", "${UNSET}", "${EMPTY}", lit]}`,
			func(c *Config) any { return c.Security.Mask }, []string{"value", "lit"}},
		{"yaml-special value stays a string", "port: {clientID: ${YAMLISH}}", func(c *Config) any { return c.Port.ClientID }, "a: b # c"},
		{"yaml-special value block style", "port:\n  clientID: ${YAMLISH}\n", func(c *Config) any { return c.Port.ClientID }, "a: b # c"},
		{"quotes stay", "port: {clientID: ${QUOTES}}", func(c *Config) any { return c.Port.ClientID }, `he said "hi" and 'bye'`},
		{"quotes in quoted scalar", `port: {clientID: "${QUOTES}"}`, func(c *Config) any { return c.Port.ClientID }, `he said "hi" and 'bye'`},
		{"newline cannot inject a key", "port:\n  clientID: ${NEWLINE}\n", func(c *Config) any { return c.Port.ClientSecret }, ""},
		{"newline kept verbatim", "port:\n  clientID: ${NEWLINE}\n", func(c *Config) any { return c.Port.ClientID }, "x\nclientSecret: injected"},
		{"flow mapping stays a string", "port: {clientID: ${FLOW}}", func(c *Config) any { return c.Port.ClientID }, "{clientSecret: injected}"},
		{"flow list stays a string", "port: {clientID: ${LIST}}", func(c *Config) any { return c.Port.ClientID }, "[x, y]"},
		{"number text into string keeps digits", "port: {clientSecret: ${NUMSTR}}", func(c *Config) any { return c.Port.ClientSecret }, "12345"},
		{"null text into string stays", "port: {clientSecret: ${NULLSTR}}", func(c *Config) any { return c.Port.ClientSecret }, "null"},
		{"int field", "executor: {maxConcurrent: ${N}}", func(c *Config) any { return c.Executor.MaxConcurrent }, 5},
		{"int field block", "executor:\n  maxConcurrent: ${N}\n", func(c *Config) any { return c.Executor.MaxConcurrent }, 5},
		{"int field default", "executor: {maxConcurrent: ${UNSET:-3}}", func(c *Config) any { return c.Executor.MaxConcurrent }, 3},
		{"int field unset takes the default", "executor: {maxConcurrent: ${UNSET}}", func(c *Config) any { return c.Executor.MaxConcurrent }, 8},
		{"float field", "port: {requestsPerSecond: ${RPS}}", func(c *Config) any { return c.Port.RequestsPerSecond }, 7.5},
		{"bool field", "security: {verifySignature: ${NO}}", func(c *Config) any { return c.Security.Verify() }, false},
		{"duration field", "executor: {shutdownTimeout: ${UNSET:-90s}}", func(c *Config) any { return c.Executor.ShutdownTimeout.D() }, 90 * time.Second},
		{"size field", "logs: {maxBatchBytes: ${UNSET:-32KiB}}", func(c *Config) any { return c.Logs.MaxBatchBytes }, ByteSize(32 << 10)},
		{"action env and command", "actions:\n  a:\n    command: [\"${UNSET:-bash}\", \"-c\", \"${SET}\"]\n    env: {X: \".properties.${SET}\"}\n",
			func(c *Config) any { return []any{c.Actions["a"].Command, c.Actions["a"].Env} },
			[]any{[]string{"bash", "-c", "value"}, map[string]string{"X": ".properties.value"}}},
		{"env names are keys, never expanded", "actions:\n  a:\n    command: [bash]\n    env: {\"${SET}\": .x}\n",
			func(c *Config) any { return c.Actions["a"].Env }, map[string]string{"${SET}": ".x"}},
		{"action names are keys, never expanded", "actions:\n  ${SET}: {command: [bash]}\n",
			func(c *Config) any { return c.ActionNames() }, []string{"${SET}"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, tc.yml, env(vars))
			if got := tc.get(c); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestExpansionErrors(t *testing.T) {
	vars := map[string]string{"WORD": "many", "KEY": "clientID"}
	for _, tc := range []struct {
		name, yml, want string
	}{
		// A key is never expanded: ${KEY} stays literal and is an unknown key.
		{"key not expanded", "port:\n  ${KEY}: x\n", "port.${KEY}: unknown key"},
		{"non-number into int", "executor: {maxConcurrent: ${WORD}}", "line 1"},
		{"non-bool into bool", "security: {verifySignature: ${WORD}}", "line 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yml), env(vars))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestUnknownKeys(t *testing.T) {
	for _, tc := range []struct {
		name, yml, want string
	}{
		{"top level", "bogus: 1\n", "bogus: unknown key (line 1)"},
		{"top level after others", "port: {orgID: o}\nextra: true\n", "extra: unknown key (line 2)"},
		{"nested", "kafka:\n  sasl:\n    mechanism: PLAIN\n    foo: bar\n", "kafka.sasl.foo: unknown key (line 4)"},
		{"nested flow", "kafka: {tls: {enabled: true, verify: false}}\n", "kafka.tls.verify: unknown key"},
		{"inside an action", "actions:\n  create_microservice:\n    command: [bash]\n    bogus: 1\n", "actions.create_microservice.bogus: unknown key (line 4)"},
		{"case matters", "port: {clientId: x}\n", "port.clientId: unknown key"},
		{"struct wants a mapping", "kafka: [a]\n", "kafka: want a mapping (line 1)"},
		{"top level wants a mapping", "just text\n", "(top level): want a mapping"},
		{"action wants a mapping", "actions:\n  a: bash\n", "actions.a: want a mapping (line 2)"},
		{"anchor at top level", "base: &b {bogus: 1}\n", "base: unknown key"},
		{"merged mapping checked", "actions:\n  a:\n    <<: {command: [bash], nope: 1}\n", "actions.a.nope: unknown key"},
		{"alias checked", "x-anchors: &a {command: [bash]}\n", "x-anchors: unknown key"},
		{"inside portAPI", "actions:\n  a:\n    command: [bash]\n    portAPI: {allow: [\"GET /v1/x\"], deny: []}\n", "actions.a.portAPI.deny: unknown key (line 4)"},
		{"inside an action's sandbox", "actions:\n  a:\n    command: [bash]\n    sandbox: {read: [/x], exec: [/y]}\n", `actions.a.sandbox: unknown key "exec"`},
		{"an action's sandbox is off or a mapping", "actions:\n  a:\n    command: [bash]\n    sandbox: none\n", `actions.a.sandbox: want off or {read: [...], write: [...]}, got "none"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yml), noEnv)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// An action's sandbox reads as off, or as paths it adds.
func TestActionSandbox(t *testing.T) {
	c := mustParse(t, "actions:\n  a: {command: [bash], sandbox: off}\n  b: {command: [bash], sandbox: {read: [/opt/tools], write: [/cache]}}\n  c: {command: [bash]}\n", noEnv)
	if got := c.Actions["a"].Sandbox; !got.Off {
		t.Errorf("sandbox: off read as %+v", got)
	}
	if got := c.Actions["b"].Sandbox; got.Off || !reflect.DeepEqual(got.Read, []string{"/opt/tools"}) || !reflect.DeepEqual(got.Write, []string{"/cache"}) {
		t.Errorf("sandbox: {read, write} read as %+v", got)
	}
	if got := c.Actions["c"].Sandbox; got.Off || got.Read != nil || got.Write != nil {
		t.Errorf("no sandbox key read as %+v", got)
	}
}

func TestAnchorsAndMergeKeys(t *testing.T) {
	c := mustParse(t, `
actions:
  a: &common
    command: [bash, -c, "echo a"]
    env: &env {REGION: .properties.region}
    timeout: 1m
  b:
    <<: *common
    env: *env
    maxConcurrent: 1
  c:
    <<: [*common]
    command: [sh]
`, noEnv)
	if b := c.Actions["b"]; b.Timeout.D() != time.Minute || b.MaxConcurrent != 1 || b.Env["REGION"] != ".properties.region" || len(b.Command) != 3 {
		t.Errorf("merged action b = %+v", b)
	}
	if cc := c.Actions["c"]; cc.Timeout.D() != time.Minute || !reflect.DeepEqual(cc.Command, []string{"sh"}) {
		t.Errorf("merged action c = %+v", cc)
	}

	// An unknown key reached through an alias is still reported.
	_, err := Parse([]byte("actions:\n  a: &x {command: [bash], oops: 1}\n  b: *x\n"), noEnv)
	if err == nil || !strings.Contains(err.Error(), "oops: unknown key") {
		t.Errorf("alias: err = %v", err)
	}
	_, err = Parse([]byte("actions:\n  a:\n    command: [bash]\n    env: &e {X: .x}\n  b:\n    command: [bash]\n    <<: {timeout: 1s, what: 2}\n"), noEnv)
	if err == nil || !strings.Contains(err.Error(), "actions.b.what: unknown key") {
		t.Errorf("merge: err = %v", err)
	}
}

func TestAliasBomb(t *testing.T) {
	// Exponential aliasing must fail fast (the decoder's own limit), not hang in checkKeys.
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x]\n")
	for i := 1; i < 40; i++ {
		b.WriteString("a" + strconv.Itoa(i) + ": &a" + strconv.Itoa(i) + " [*a" + strconv.Itoa(i-1) + ", *a" + strconv.Itoa(i-1) + "]\n")
	}
	done := make(chan error, 1)
	go func() {
		_, err := Parse([]byte("actions:\n  x:\n    command: [bash]\n    env:\n"+indent(b.String(), "      ")), noEnv)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("alias bomb parsed without error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("alias bomb: Parse did not return")
	}
}

func indent(s, pre string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = pre + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}

func TestSizesAndDurations(t *testing.T) {
	for _, tc := range []struct {
		name, yml string
		get       func(*Config) any
		want      any
	}{
		{"KiB", "logs: {maxBatchBytes: 64KiB}", func(c *Config) any { return c.Logs.MaxBatchBytes }, ByteSize(65536)},
		{"MiB", "logs: {maxBytesPerRun: 4MiB}", func(c *Config) any { return c.Logs.MaxBytesPerRun }, ByteSize(4 << 20)},
		{"plain number", "logs: {maxBatchBytes: 1000}", func(c *Config) any { return c.Logs.MaxBatchBytes }, ByteSize(1000)},
		{"with space", "logs: {maxBatchBytes: 2 KiB}", func(c *Config) any { return c.Logs.MaxBatchBytes }, ByteSize(2048)},
		{"GiB", "logs: {maxBytesPerRun: 1GiB}", func(c *Config) any { return c.Logs.MaxBytesPerRun }, ByteSize(1 << 30)},
		{"seconds", "executor: {shutdownTimeout: 90s}", func(c *Config) any { return c.Executor.ShutdownTimeout.D() }, 90 * time.Second},
		{"minutes", "actions: {a: {command: [bash], timeout: 10m}}", func(c *Config) any { return c.Actions["a"].Timeout.D() }, 10 * time.Minute},
		{"compound", "logs: {flushInterval: 1m30s}", func(c *Config) any { return c.Logs.FlushInterval.D() }, 90 * time.Second},
		{"zero timeout", "actions: {a: {command: [bash], timeout: 0}}", func(c *Config) any { return c.Actions["a"].Timeout.D() }, time.Duration(0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, tc.yml, noEnv)
			if got := tc.get(c); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name, yml string
		want      []string
	}{
		{"bad size unit", "logs:\n  maxBatchBytes: 4XB\n", []string{"line 2", `"4XB"`}},
		{"negative size", "logs:\n  maxBatchBytes: -1\n", []string{"line 2"}},
		{"size overflow", "logs:\n\n  maxBytesPerRun: 9007199254740993KiB\n", []string{"line 3", "too large"}},
		{"size overflow wrapping to small", "logs:\n  maxBatchBytes: 18014398509481985KiB\n", []string{"line 2"}},
		{"bad duration", "executor:\n  shutdownTimeout: ten\n", []string{"line 2", `"ten"`}},
		{"duration without unit", "actions:\n  a:\n    command: [bash]\n    timeout: 90\n", []string{"line 4"}},
		{"duration as list", "logs:\n  flushInterval: [1s]\n", []string{"line 2"}},
		{"wrong type int", "executor:\n  maxConcurrent: many\n", []string{"line 2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yml), noEnv)
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{
		"0": 0, "1000": 1000, "64KiB": 64 << 10, "4MiB": 4 << 20, "1GiB": 1 << 30,
		"1KB": 1000, "2MB": 2e6, "7B": 7, " 3 KiB ": 3 << 10, "8589934591GiB": 8589934591 << 30,
	} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "KiB", "4XB", "4 kib", "1.5MiB", "-1", "-1KiB", "x", "8589934592GiB", "9223372036854775808"} {
		if got, err := ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) = %d, want an error", in, got)
		}
	}
	for b, want := range map[ByteSize]string{64 << 10: "64KiB", 4 << 20: "4MiB", 1000: "1000", 1536: "1536", 0: "0"} {
		if got := b.String(); got != want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(b), got, want)
		}
	}
}

// validConfig returns a config that passes Validate, with an executable script in a temp dir.
func validConfig(t *testing.T) (*Config, string) {
	t.Helper()
	dir := t.TempDir()
	script := filepath.Join(dir, "run.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := mustParse(t, `
port: {clientID: id, clientSecret: secret, orgID: org}
kafka: {brokers: ["localhost:9092"], group: org.runner}
actions:
  create:
    command: ["`+script+`", "--flag"]
    env: {SERVICE_NAME: .properties.name, REGION: '.properties.region // "eu"'}
    workdir: "`+dir+`"
  day2:
    command: [sh, -c, "exit 0"]
`, noEnv)
	return c, dir
}

func validate(c *Config) error {
	return c.Validate(runmsg.CompileSelector, exec.LookPath)
}

func TestValidateValid(t *testing.T) {
	c, _ := validConfig(t)
	if err := validate(c); err != nil {
		t.Fatalf("Validate(valid) = %v", err)
	}
	c.Kafka.SASL = SASL{Mechanism: "SCRAM-SHA-256", Username: "u", Password: "p"}
	c.Kafka.StartOffset, c.Kafka.GroupProtocol = "earliest", "consumer"
	if err := validate(c); err != nil {
		t.Fatalf("Validate(valid with sasl) = %v", err)
	}
}

func TestValidateProblems(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "notexec.sh")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	aFile := filepath.Join(dir, "file")
	if err := os.WriteFile(aFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(c *Config)
		key    string
	}{
		{"missing clientID", func(c *Config) { c.Port.ClientID = "" }, "port.clientID"},
		{"missing clientSecret", func(c *Config) { c.Port.ClientSecret = "" }, "port.clientSecret"},
		{"bad baseURL", func(c *Config) { c.Port.BaseURL = "api.getport.io" }, "port.baseURL"},
		{"negative rps", func(c *Config) { c.Port.RequestsPerSecond = -1 }, "port.requestsPerSecond"},
		{"NaN rps", func(c *Config) { c.Port.RequestsPerSecond = math.NaN() }, "port.requestsPerSecond"},
		{"+Inf rps", func(c *Config) { c.Port.RequestsPerSecond = math.Inf(1) }, "port.requestsPerSecond"},
		{"-Inf rps", func(c *Config) { c.Port.RequestsPerSecond = math.Inf(-1) }, "port.requestsPerSecond"},
		{"bad runIsolation", func(c *Config) { c.Security.RunIsolation = "none" }, "security.runIsolation"},
		{"missing group", func(c *Config) { c.Kafka.Group = "" }, "kafka.group"},
		{"sasl without brokers", func(c *Config) {
			c.Kafka.Brokers = nil
			c.Kafka.SASL = SASL{Mechanism: "PLAIN", Username: "u", Password: "p"}
		}, "kafka.sasl"}, // brokers and SASL come from Port together
		{"empty workflowNode", func(c *Config) {
			a := c.Actions["create_microservice"]
			a.WorkflowNode = &WorkflowNode{}
			c.Actions["create_microservice"] = a
		}, "actions.create_microservice.workflowNode"},
		{"bad workflowNode selector", func(c *Config) {
			a := c.Actions["create_microservice"]
			a.WorkflowNode = &WorkflowNode{Selector: ".x["}
			c.Actions["create_microservice"] = a
		}, "actions.create_microservice.workflowNode.selector"},
		{"bad broker", func(c *Config) { c.Kafka.Brokers = []string{"localhost:9092", "nohost"} }, "kafka.brokers[1]"},
		{"missing topic without org", func(c *Config) { c.Kafka.Topic = "" }, "kafka.topic"},
		{"bad startOffset", func(c *Config) { c.Kafka.StartOffset = "oldest" }, "kafka.startOffset"},
		{"bad groupProtocol", func(c *Config) { c.Kafka.GroupProtocol = "kip848" }, "kafka.groupProtocol"},
		{"bad sasl mechanism", func(c *Config) { c.Kafka.SASL = SASL{Mechanism: "GSSAPI", Username: "u", Password: "p"} }, "kafka.sasl.mechanism"},
		{"sasl without username", func(c *Config) { c.Kafka.SASL = SASL{Mechanism: "PLAIN", Password: "p"} }, "kafka.sasl.username"},
		{"sasl without password", func(c *Config) { c.Kafka.SASL = SASL{Mechanism: "SCRAM-SHA-512", Username: "u"} }, "kafka.sasl.password"},
		{"missing caFile", func(c *Config) { c.Kafka.TLS.CAFile = filepath.Join(dir, "nope.pem") }, "kafka.tls.caFile"},
		{"maxConcurrent negative", func(c *Config) { c.Executor.MaxConcurrent = -1 }, "executor.maxConcurrent"},
		{"maxConcurrent over the metadata-safe limit", func(c *Config) { c.Executor.MaxConcurrent = MaxConcurrentLimit + 1 }, "executor.maxConcurrent"},
		{"shutdownTimeout negative", func(c *Config) { c.Executor.ShutdownTimeout = -1 }, "executor.shutdownTimeout"},
		{"sessionTimeout over 30m", func(c *Config) { c.Kafka.SessionTimeout = Duration(31 * time.Minute) }, "kafka.sessionTimeout"},
		{"sessionTimeout under 6s", func(c *Config) { c.Kafka.SessionTimeout = Duration(5 * time.Second) }, "kafka.sessionTimeout"},
		{"maxMessageAge under 1m", func(c *Config) { c.Security.MaxMessageAge = Duration(time.Second) }, "security.maxMessageAge"},
		{"flushInterval negative", func(c *Config) { c.Logs.FlushInterval = -1 }, "logs.flushInterval"},
		{"maxBatchBytes over the limit", func(c *Config) { c.Logs.MaxBatchBytes = maxBatchLimit + 1 }, "logs.maxBatchBytes"},
		{"maxBatchBytes 1MiB", func(c *Config) { c.Logs.MaxBatchBytes = MaxRequestBytes }, "logs.maxBatchBytes"},
		{"maxBytesPerRun negative", func(c *Config) { c.Logs.MaxBytesPerRun = -1 }, "logs.maxBytesPerRun"},
		{"bad jq message.runId", func(c *Config) { c.Message.RunID = ".context.runId |" }, "message.runId"},
		{"bad jq message.action", func(c *Config) { c.Message.Action = "{" }, "message.action"},
		{"bad jq message.properties", func(c *Config) { c.Message.Properties = ".a[" }, "message.properties"},
		{"unknown jq function message.entity", func(c *Config) { c.Message.Entity = "nosuchfunc(1)" }, "message.entity"},
		{"no actions", func(c *Config) { c.Actions = nil }, "actions"},
		{"bad jq in env", func(c *Config) { setEnv(c, "create", "REGION", ".properties.region | ") }, "actions.create.env.REGION"},
		{"env PORT_ prefix", func(c *Config) { setEnv(c, "create", "PORT_RUN_ID", ".x") }, "actions.create.env.PORT_RUN_ID"},
		{"env bad name", func(c *Config) { setEnv(c, "create", "1BAD-NAME", ".x") }, "actions.create.env.1BAD-NAME"},
		{"missing command", func(c *Config) { setCmd(c, "day2", nil) }, "actions.day2.command"},
		{"empty command", func(c *Config) { setCmd(c, "day2", []string{""}) }, "actions.day2.command"},
		{"command does not exist", func(c *Config) { setCmd(c, "day2", []string{filepath.Join(dir, "missing.sh")}) }, "actions.day2.command"},
		{"command not in PATH", func(c *Config) { setCmd(c, "day2", []string{"no-such-program-xyz"}) }, "actions.day2.command"},
		{"command not executable", func(c *Config) { setCmd(c, "day2", []string{notExec}) }, "actions.day2.command"},
		{"command is a directory", func(c *Config) { setCmd(c, "day2", []string{dir}) }, "actions.day2.command"},
		{"negative timeout", func(c *Config) { a := c.Actions["day2"]; a.Timeout = -1; c.Actions["day2"] = a }, "actions.day2.timeout"},
		{"negative action maxConcurrent", func(c *Config) { a := c.Actions["day2"]; a.MaxConcurrent = -1; c.Actions["day2"] = a }, "actions.day2.maxConcurrent"},
		{"bad onInterrupted", func(c *Config) { a := c.Actions["day2"]; a.OnInterrupted = "retry"; c.Actions["day2"] = a }, "actions.day2.onInterrupted"},
		{"workdir missing", func(c *Config) { a := c.Actions["day2"]; a.Workdir = filepath.Join(dir, "nope"); c.Actions["day2"] = a }, "actions.day2.workdir"},
		{"workdir not a dir", func(c *Config) { a := c.Actions["day2"]; a.Workdir = aFile; c.Actions["day2"] = a }, "actions.day2.workdir"},
		{"portAPI.allow bad method", func(c *Config) { setAllow(c, "day2", "GET /v1/blueprints/*", "FETCH /v1/blueprints") }, "actions.day2.portAPI.allow[1]"},
		{"portAPI.allow not under /v1", func(c *Config) { setAllow(c, "day2", "/blueprints/*") }, "actions.day2.portAPI.allow[0]"},
		{"portAPI.allow partial glob", func(c *Config) { setAllow(c, "day2", "GET /v1/blueprints/svc-*") }, "actions.day2.portAPI.allow[0]"},
		{"portAPI.allow ** not last", func(c *Config) { setAllow(c, "day2", "/v1/**/entities") }, "actions.day2.portAPI.allow[0]"},
		{"portAPI.allow empty segment", func(c *Config) { setAllow(c, "day2", "/v1/blueprints//entities") }, "actions.day2.portAPI.allow[0]"},
		{"portAPI.allow query", func(c *Config) { setAllow(c, "day2", "GET /v1/blueprints?x=1") }, "actions.day2.portAPI.allow[0]"},
		{"portAPI.allow empty", func(c *Config) { setAllow(c, "day2", "") }, "actions.day2.portAPI.allow[0]"},
		{"bad sandbox mode", func(c *Config) { c.Executor.Sandbox = "strict" }, "executor.sandbox"},
		{"runAs not a range", func(c *Config) { c.Executor.RunAs = "20000-" }, "executor.runAs"},
		{"runAs holding root", func(c *Config) { c.Executor.RunAs = "0-10" }, "executor.runAs"},
		{"runAs holding the agent's uid", func(c *Config) {
			c.Executor.RunAs = fmt.Sprintf("%d-%d", os.Getuid(), os.Getuid()+1) // root's is refused as root
		}, "executor.runAs"},
		{"runAs fewer uids than maxConcurrent", func(c *Config) { c.Executor.RunAs, c.Executor.MaxConcurrent = "20000-20003", 8 }, "executor.runAs"},
		{"runsDir relative", func(c *Config) { c.Executor.RunsDir = "runs" }, "executor.runsDir"},
		{"private relative", func(c *Config) { c.Executor.Private = []string{"/ok", "secrets"} }, "executor.private[1]"},
		{"negative processes", func(c *Config) { c.Executor.Limits.Processes = -1 }, "executor.limits.processes"},
		{"cpuTime under a second", func(c *Config) { c.Executor.Limits.CPUTime = Duration(time.Millisecond) }, "executor.limits.cpuTime"},
		{"action sandbox path relative", func(c *Config) {
			a := c.Actions["day2"]
			a.Sandbox.Write = []string{"cache"}
			c.Actions["day2"] = a
		}, "actions.day2.sandbox.write[0]"},
		{"action negative openFiles", func(c *Config) { a := c.Actions["day2"]; a.Limits.OpenFiles = -1; c.Actions["day2"] = a }, "actions.day2.limits.openFiles"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := validConfig(t)
			if tc.name == "missing topic without org" {
				c.Port.OrgID = ""
			}
			tc.mutate(c)
			err := validate(c)
			if err == nil {
				t.Fatal("Validate = nil, want a problem")
			}
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("Validate returned %T, want Problems", err)
			}
			found := false
			for _, p := range ps {
				if strings.HasPrefix(p.Error(), tc.key+": ") {
					found = true
				}
			}
			if !found {
				t.Errorf("no problem names %q:\n%v", tc.key, err)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := mustParse(t, "actions:\n  a: {command: [\"\"], env: {PORT_X: \"(\"}}\n", noEnv)
	err := validate(c)
	for _, key := range []string{"port.clientID", "port.clientSecret", "kafka.topic",
		"actions.a.command", "actions.a.env.PORT_X"} {
		if err == nil || !strings.Contains(err.Error(), key+": ") {
			t.Errorf("problems do not name %s:\n%v", key, err)
		}
	}
}

// Without brokers the agent asks Port for brokers and credentials (and the group defaults
// to the Kafka username Port gives): only the Port credentials, the org and actions remain.
func TestKafkaFromPort(t *testing.T) {
	c := mustParse(t, "port: {clientID: id, clientSecret: s, orgID: org_1}\nactions:\n  a: {command: [\"/bin/true\"]}\n", noEnv)
	if !c.Kafka.FromPort() {
		t.Fatal("no brokers: FromPort = false")
	}
	if err := validate(c); err != nil {
		t.Fatalf("Validate = %v", err)
	}
	c.Kafka.Brokers = []string{"b:9092"}
	if err := validate(c); err == nil || !strings.Contains(err.Error(), "kafka.group") {
		t.Fatalf("configured brokers without a group: %v", err)
	}
}

func setEnv(c *Config, action, name, expr string) {
	a := c.Actions[action]
	env := map[string]string{}
	for k, v := range a.Env {
		env[k] = v
	}
	env[name] = expr
	a.Env = env
	c.Actions[action] = a
}

func setCmd(c *Config, action string, cmd []string) {
	a := c.Actions[action]
	a.Command = cmd
	c.Actions[action] = a
}

func TestMaskDropsEmpty(t *testing.T) {
	c := mustParse(t, `security: {mask: ["", "${A}", "${B}", "x", ""]}`, env(map[string]string{"A": "secret", "B": ""}))
	if !reflect.DeepEqual(c.Security.Mask, []string{"secret", "x"}) {
		t.Errorf("mask = %#v", c.Security.Mask)
	}
	c = mustParse(t, `security: {mask: ["${UNSET}"]}`, noEnv)
	if len(c.Security.Mask) != 0 {
		t.Errorf("mask = %#v, want empty", c.Security.Mask)
	}
}

func TestResolveCommands(t *testing.T) {
	c := mustParse(t, `
actions:
  rel: {command: ["./x/y.sh", "./arg"]}
  rel2: {command: ["scripts/z.sh"]}
  bare: {command: [bash, -c, "./not-resolved"]}
  abs: {command: [/usr/bin/env, true]}
  none: {env: {A: .a}}
`, noEnv)
	base := filepath.Join(string(filepath.Separator), "srv", "runner")
	c.ResolveCommands(base)
	for name, want := range map[string][]string{
		"rel":  {filepath.Join(base, "x", "y.sh"), "./arg"},
		"rel2": {filepath.Join(base, "scripts", "z.sh")},
		"bare": {"bash", "-c", "./not-resolved"},
		"abs":  {"/usr/bin/env", "true"},
		"none": nil,
	} {
		if got := c.Actions[name].Command; !reflect.DeepEqual(got, want) {
			t.Errorf("actions.%s.command = %#v, want %#v", name, got, want)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(path, []byte("actions:\n  a: {command: [./s.sh]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if got := c.Actions["a"].Command[0]; got != filepath.Join(wd, "s.sh") {
		t.Errorf("command = %q, want it resolved against the working directory", got)
	}
	if err := os.WriteFile(path, []byte("nope: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "nope") {
		t.Errorf("Load(bad) = %v, want the path and the key", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("Load(missing) = nil error")
	}
}

func TestSpecExampleValidatesWithGroup(t *testing.T) {
	// The spec example plus a group is a valid config when its command exists.
	raw := strings.Replace(string(readSpec(t)), `group: ""`, `group: "org_123.runner"`, 1)
	c, err := Parse([]byte(raw), env(specEnv))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate(runmsg.CompileSelector, func(string) (string, error) { return "/x", nil })
	if err != nil {
		t.Fatalf("Validate = %v", err)
	}
}

func setAllow(c *Config, action string, patterns ...string) {
	a := c.Actions[action]
	a.PortAPI.Allow = patterns
	c.Actions[action] = a
}

func TestPortAPIAllow(t *testing.T) {
	c := mustParse(t, `
actions:
  a:
    command: [bash]
    portAPI:
      allow: ["GET /v1/blueprints/*", "post /v1/blueprints/service/entities", "/v1/entities/**"]
`, noEnv)
	want := []string{"GET /v1/blueprints/*", "post /v1/blueprints/service/entities", "/v1/entities/**"}
	if got := c.Actions["a"].PortAPI.Allow; !reflect.DeepEqual(got, want) {
		t.Fatalf("portAPI.allow = %q, want %q", got, want)
	}
	c.Port.ClientID, c.Port.ClientSecret, c.Kafka.Brokers, c.Kafka.Topic, c.Kafka.Group = "id", "secret", []string{"b:9092"}, "t", "g"
	if err := validate(c); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	// The agent compiles the rules validation checked.
	rules, err := ParseAllowRules(c.Actions["a"].PortAPI.Allow)
	if err != nil || len(rules) != 3 || !rules[0].Match("GET", []string{"blueprints", "x"}) || !rules[1].Match("POST", []string{"blueprints", "service", "entities"}) {
		t.Fatalf("portAPI rules = %v, %v", rules, err)
	}
}

// config parses allow rules without depending on the proxy or any HTTP code.
func TestNoHTTPDependency(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list dependencies with")
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for dep := range strings.FieldsSeq(string(out)) {
		if dep == "net/http" || strings.HasSuffix(dep, "/portproxy") {
			t.Errorf("config depends on %s", dep)
		}
	}
}

// YAML's .nan and .inf reach the float as NaN and Inf; both would turn the limiter off.
func TestRequestsPerSecondNaNFromYAML(t *testing.T) {
	for _, v := range []string{".nan", ".NaN", ".inf", "-.inf"} {
		c := mustParse(t, "port: {requestsPerSecond: "+v+"}\nactions:\n  a:\n    command: [bash]\n", noEnv)
		c.Port.ClientID, c.Port.ClientSecret, c.Kafka.Brokers, c.Kafka.Topic, c.Kafka.Group = "id", "secret", []string{"b:9092"}, "t", "g"
		err := validate(c)
		if err == nil || !strings.Contains(err.Error(), "port.requestsPerSecond") {
			t.Errorf("requestsPerSecond: %s: Validate = %v, want a port.requestsPerSecond problem", v, err)
		}
	}
}

// ParseAll reports every problem of a file in one pass, each with its key and line, and
// still returns the rest of the config so Validate can name the problems it finds too.
func TestParseAllReportsEveryProblem(t *testing.T) {
	yml := `port:
  clientID: x
  clientSecret: y
  orgID: o
  bogus: 1
kafka:
  brokers: [b:1]
  group: g
executor:
  shutdownTimeout: "10"
  maxConcurrent: many
actions:
  a:
    command: [/nonexistent/script]
    env: {X: "(("}
    timeout: 5m
  b: {command: [sh], what: 2, maxConcurrent: [1]}
`
	c, lines, ps := ParseAll([]byte(yml), noEnv)
	if c == nil {
		t.Fatalf("ParseAll returned no config: %v", ps)
	}
	want := []string{
		"port.bogus: unknown key (line 5)",
		`executor.shutdownTimeout: "10" is not a duration like 90s or 10m (line 10)`,
		"executor.maxConcurrent: cannot unmarshal !!str `many` into int (line 11)",
		"actions.b.what: unknown key (line 17)",
		"actions.b.maxConcurrent: cannot unmarshal !!seq into int (line 17)",
	}
	equalProblems(t, ps, want)
	if c.Actions["a"].Timeout.D() != 5*time.Minute || c.Executor.MaxConcurrent != 8 {
		t.Errorf("the rest of the config was not kept: %+v", c)
	}
	err := c.Validate(runmsg.CompileSelector, func(p string) (string, error) {
		if p == "sh" {
			return "/bin/sh", nil
		}
		return "", errors.New("no such file")
	})
	var vs Problems
	if !errors.As(err, &vs) {
		t.Fatalf("Validate = %v", err)
	}
	equalProblems(t, vs.WithLines(lines), []string{
		`actions.a.command: "/nonexistent/script" is not an executable: no such file (line 14)`,
		`actions.a.env.X: bad jq expression "((": parse jq "((": unexpected EOF (line 15)`,
	})
	if _, err := Parse([]byte(yml), noEnv); err == nil || !strings.Contains(err.Error(), "port.bogus") ||
		!strings.Contains(err.Error(), "executor.maxConcurrent") {
		t.Errorf("Parse = %v, want every problem too", err)
	}
}

func equalProblems(t *testing.T, ps Problems, want []string) {
	t.Helper()
	var got []string
	for _, p := range ps {
		got = append(got, p.Error())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// metrics.pprof is opt-in: profiling endpoints are off unless the file turns them on.
func TestMetricsPprofOptIn(t *testing.T) {
	if c := mustParse(t, "metrics: {addr: \"127.0.0.1:1\"}\n", noEnv); c.Metrics.Pprof {
		t.Error("metrics.pprof defaults to true, want false")
	}
	if c := mustParse(t, "metrics: {pprof: true}\n", noEnv); !c.Metrics.Pprof {
		t.Error("metrics.pprof: true not kept")
	}
}

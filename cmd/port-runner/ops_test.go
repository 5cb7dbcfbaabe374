package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/test/harness"
)

// validate on a config with three problems of three kinds (an unknown key, a value that is
// not a duration, a missing command) names all three with their line, and exits 2.
func TestValidateNamesEveryProblemAtOnce(t *testing.T) {
	path := writeConfig(t, func(y, dir string) string {
		y = strings.Replace(y, "  orgID: ${PORT_ORG_ID}\n", "  orgID: ${PORT_ORG_ID}\n  clientSecrets: x\n", 1) // line 5
		y = strings.Replace(y, "    timeout: 10m\n", "    timeout: \"10\"\n", 1)                                // line 16
		return strings.Replace(y, filepath.Join(dir, "create-service.sh"), filepath.Join(dir, "gone.sh"), 1)    // line 12
	})
	code, stdout, stderr := runCmd("validate", "--config", path)
	if code != exitUsage {
		t.Fatalf("exit %d, want 2; stdout %q stderr %q", code, stdout, stderr)
	}
	for _, want := range []string{
		"3 problem(s)",
		"port.clientSecrets: unknown key (line 5)",
		`actions.create_microservice.timeout: "10" is not a duration like 90s or 10m (line 16)`,
		"actions.create_microservice.command: \"" + filepath.Join(filepath.Dir(path), "gone.sh") + "\" is not an executable",
		"(line 12)",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

// A refused broker at start is one clear error line, no stack trace, and exit 1. Port
// answers: the agent checks it before the brokers (it joins the group only once both do).
func TestRunRefusedBrokerIsOneLine(t *testing.T) {
	broker := harness.RefusingAddr(t)
	base := startEmulator(t, emulator.Options{ClientID: "cid", ClientSecret: "csecret", OrgID: "org_test"})
	path := writeConfig(t, func(y, _ string) string {
		y = strings.Replace(y, "  orgID: ${PORT_ORG_ID}\n", "  orgID: ${PORT_ORG_ID}\n  baseURL: "+base+"\n", 1)
		y = strings.Replace(y, `brokers: ["localhost:9092"]`, `brokers: ["`+broker+`"]`, 1)
		y = strings.Replace(y, "  sasl: {mechanism: SCRAM-SHA-512, username: ${KAFKA_USERNAME}, password: ${KAFKA_PASSWORD}}\n", "", 1)
		return y + "metrics: {addr: \"127.0.0.1:0\"}\n"
	})
	code, _, stderr := runCmd("run", "--config", path)
	if code != exitRuntime {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr)
	}
	errs := errorLines(t, stderr)
	if len(errs) != 1 || !strings.Contains(errs[0], broker) || !strings.Contains(errs[0], "connection refused") {
		t.Errorf("want one error line naming the broker and the refusal, got:\n%s", stderr)
	}
	if strings.Contains(stderr, "stacktrace") || strings.Contains(stderr, "goroutine ") {
		t.Errorf("a stack trace for an expected error:\n%s", stderr)
	}
}

// validate --connect says which of the brokers, SASL, the topic, the group and the Port
// credentials failed.
func TestValidateConnect(t *testing.T) {
	cluster := harness.NewBroker(t)
	topic := cluster.Topic(t, 2)
	base := startEmulator(t, emulator.Options{ClientID: "cid", ClientSecret: "csecret", OrgID: "org_test", Topic: topic})
	if cluster.Kind != harness.KindKfake {
		t.Skip("the config below has no TLS/SASL for an external broker")
	}
	config := func(broker, topic, secret string) string {
		return writeConfig(t, func(y, _ string) string {
			y = strings.Replace(y, `brokers: ["localhost:9092"]`, `brokers: ["`+broker+`"]`+"\n  topic: "+topic, 1)
			y = strings.Replace(y, "  sasl: {mechanism: SCRAM-SHA-512, username: ${KAFKA_USERNAME}, password: ${KAFKA_PASSWORD}}\n", "", 1)
			y = strings.Replace(y, "clientSecret: ${PORT_CLIENT_SECRET}", "clientSecret: "+secret, 1)
			return strings.Replace(y, "  orgID: ${PORT_ORG_ID}\n", "  orgID: ${PORT_ORG_ID}\n  baseURL: "+base+"\n", 1)
		})
	}
	broker := cluster.Brokers[0]

	code, stdout, stderr := runCmd("validate", "--connect", "--config", config(broker, topic, "csecret"))
	if code != exitOK {
		t.Fatalf("all good: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{"ok       kafka brokers", "skipped  kafka SASL", "ok       kafka topic: " + topic + ", 2 partition(s)",
		"ok       kafka group", "ok       port credentials"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("all good: stdout lacks %q:\n%s", want, stdout)
		}
	}

	for _, tc := range []struct {
		name, path string
		want       []string
	}{
		{"refused broker", config(harness.RefusingAddr(t), topic, "csecret"),
			[]string{"FAILED   kafka brokers", "connection refused", "skipped  kafka topic", "ok       port credentials"}},
		{"no such topic", config(broker, "no-such-topic", "csecret"),
			[]string{"ok       kafka brokers", "FAILED   kafka topic: no-such-topic", "ok       port credentials"}},
		{"wrong Port secret", config(broker, topic, "wrong"),
			[]string{"ok       kafka topic", "FAILED   port credentials", "401"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCmd("validate", "--connect", "--config", tc.path)
			if code != exitRuntime {
				t.Errorf("exit %d, want 1", code)
			}
			for _, w := range tc.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			if !strings.Contains(stderr, "check(s) failed") || strings.Contains(stdout+stderr, "wrong") && tc.name == "wrong Port secret" {
				t.Errorf("stderr %q; the secret must not be printed", stderr)
			}
		})
	}
}

// SASL that the broker refuses is named as the failing check, with the brokers reached.
func TestValidateConnectSASL(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "admin", "right-password"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	base := startEmulator(t, emulator.Options{ClientID: "cid", ClientSecret: "csecret", OrgID: "org_test"})
	path := writeConfig(t, func(y, _ string) string {
		y = strings.Replace(y, "  orgID: ${PORT_ORG_ID}\n", "  orgID: ${PORT_ORG_ID}\n  baseURL: "+base+"\n", 1)
		return strings.Replace(y, `brokers: ["localhost:9092"]`, `brokers: ["`+kc.ListenAddrs()[0]+`"]`, 1)
	})
	os.Setenv("KAFKA_USERNAME", "admin") // t.Setenv'd by writeConfig: restored at cleanup
	os.Setenv("KAFKA_PASSWORD", "wrong-password")
	code, stdout, _ := runCmd("validate", "--connect", "--config", path)
	if code != exitRuntime {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{"ok       kafka brokers", "FAILED   kafka SASL: SCRAM-SHA-512 as \"admin\"", "skipped  kafka topic",
		"ok       port credentials"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "wrong-password") {
		t.Error("the password is printed")
	}
}

// Port refusing the agent's credentials at start is one clear error line, exit 1.
func TestRunBadPortCredentialsIsOneLine(t *testing.T) {
	cluster := harness.NewBroker(t)
	if cluster.Kind != harness.KindKfake {
		t.Skip("the config below has no TLS/SASL for an external broker")
	}
	topic := cluster.Topic(t, 1)
	base := startEmulator(t, emulator.Options{ClientID: "cid", ClientSecret: "the-real-secret", OrgID: "org_test", Topic: topic})
	path := writeConfig(t, func(y, _ string) string {
		y = strings.Replace(y, `brokers: ["localhost:9092"]`, `brokers: ["`+cluster.Brokers[0]+`"]`+"\n  topic: "+topic, 1)
		y = strings.Replace(y, "  sasl: {mechanism: SCRAM-SHA-512, username: ${KAFKA_USERNAME}, password: ${KAFKA_PASSWORD}}\n", "", 1)
		y = strings.Replace(y, "  orgID: ${PORT_ORG_ID}\n", "  orgID: ${PORT_ORG_ID}\n  baseURL: "+base+"\n", 1)
		return y + "metrics: {addr: \"127.0.0.1:0\"}\n"
	})
	code, _, stderr := runCmd("run", "--config", path)
	if code != exitRuntime {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr)
	}
	errs := errorLines(t, stderr)
	if len(errs) != 1 || !strings.Contains(errs[0], "port api") || !strings.Contains(errs[0], "401") {
		t.Errorf("want one error line saying Port refused the credentials, got:\n%s", stderr)
	}
	if strings.Contains(stderr, "stacktrace") || strings.Contains(stderr, "csecret") {
		t.Errorf("a stack trace or the secret in the output:\n%s", stderr)
	}
}

// A value that does not decode is reported once: validation does not add "required" for
// the value it left out.
func TestValidateReportsAWrongValueOnce(t *testing.T) {
	path := writeConfig(t, func(y, dir string) string {
		return strings.Replace(y, `command: ["`+filepath.Join(dir, "create-service.sh")+`"]`, "command: {run: x}", 1)
	})
	code, _, stderr := runCmd("validate", "--config", path)
	if code != exitUsage || strings.Count(stderr, "actions.create_microservice.command") != 1 || !strings.Contains(stderr, "1 problem(s)") {
		t.Errorf("exit %d, want 2 with one problem about the command:\n%s", code, stderr)
	}
}

// errorLines returns the error lines of the agent's log, and fails t on any line of
// franz-go's own (the start check's error says it all).
func errorLines(t *testing.T, stderr string) []string {
	t.Helper()
	var errs []string
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if strings.Contains(l, `"level":"error"`) {
			errs = append(errs, l)
		}
		if strings.Contains(l, `"logger":"kafka"`) {
			t.Errorf("franz-go logged at start: %s", l)
		}
	}
	return errs
}

// With kafka.brokers not configured, --connect asks Port for the Kafka credentials first and
// checks the brokers it names (nothing listens at the one given here, so that check fails
// and says so), never printing the password.
func TestValidateConnectKafkaFromPort(t *testing.T) {
	broker := harness.RefusingAddr(t)
	base := startEmulator(t, emulator.Options{ClientID: "cid", ClientSecret: "csecret", OrgID: "org_test",
		KafkaCredentials: &emulator.KafkaCredentials{Brokers: []string{broker}, Username: "org_test-user", Password: "kafka-pass-123"}})
	path := writeConfig(t, func(y, _ string) string {
		y = strings.Replace(y, `  brokers: ["localhost:9092"]`+"\n", "", 1)
		y = strings.Replace(y, "  sasl: {mechanism: SCRAM-SHA-512, username: ${KAFKA_USERNAME}, password: ${KAFKA_PASSWORD}}\n", "", 1)
		return strings.Replace(y, "  orgID: ${PORT_ORG_ID}\n", "  orgID: ${PORT_ORG_ID}\n  baseURL: "+base+"\n", 1)
	})
	code, stdout, stderr := runCmd("validate", "--connect", "--config", path)
	if code != exitRuntime {
		t.Errorf("exit %d, want 1\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{"ok       port credentials", "ok       kafka credentials from Port: brokers [" + broker + "], user \"org_test-user\"",
		"FAILED   kafka brokers: [" + broker + "]", "skipped  kafka topic"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout+stderr, "kafka-pass-123") {
		t.Error("the Kafka password is printed")
	}
}

// startEmulator serves a Port emulator until the test ends and returns its base URL.
func startEmulator(t *testing.T, opts emulator.Options) string {
	t.Helper()
	return harness.Serve(t, emulator.New(opts)).URL()
}

// A log level run cannot read is bad usage, exit 2 as every command's help says, not a
// runtime failure (1) that a supervisor would restart into the same error.
func TestRunBadLogLevelIsUsage(t *testing.T) {
	path := writeConfig(t, nil)
	t.Setenv("PORT_RUNNER_LOG_LEVEL", "loud")
	code, _, stderr := runCmd("run", "--config", path)
	if code != exitUsage || !strings.Contains(stderr, "PORT_RUNNER_LOG_LEVEL") {
		t.Fatalf("exit %d, want %d and the variable named; stderr:\n%s", code, exitUsage, stderr)
	}
}

// A password in port.baseURL (a gateway in front of Port's API) is not printed by
// validate --connect, whether Port takes the credentials or not.
func TestValidateConnectHidesTheBaseURLPassword(t *testing.T) {
	base := startEmulator(t, emulator.Options{ClientID: "cid", ClientSecret: "csecret", OrgID: "org_test"})
	withPassword := strings.Replace(base, "://", "://gw:gw-pass-77@", 1)
	for _, secret := range []string{"csecret", "wrong"} {
		path := writeConfig(t, func(y, _ string) string {
			y = strings.Replace(y, "clientSecret: ${PORT_CLIENT_SECRET}", "clientSecret: "+secret, 1)
			return strings.Replace(y, "  orgID: ${PORT_ORG_ID}\n", "  orgID: ${PORT_ORG_ID}\n  baseURL: "+withPassword+"\n", 1)
		})
		_, stdout, stderr := runCmd("validate", "--connect", "--config", path)
		if !strings.Contains(stdout, "port credentials") || strings.Contains(stdout+stderr, "gw-pass-77") {
			t.Errorf("secret %s: the base URL's password is printed, or no Port check:\n%s%s", secret, stdout, stderr)
		}
	}
}

package agent_test

import (
	"strings"
	"testing"

	"github.com/port-runner/port-runner/test/harness"
)

// TestPassEnvReachesCommands: a command of an action sees the agent's HTTPS_PROXY when
// executor.passEnv names it, and still none of the agent's credentials, which sit in the
// same environment (as the chart's Secret puts them there).
func TestPassEnvReachesCommands(t *testing.T) {
	const proxy = "http://proxy.corp.example:3128"
	t.Setenv("HTTPS_PROXY", proxy)
	t.Setenv("DEPLOY_TOKEN", "tok-passed-and-masked")
	t.Setenv("PORT_CLIENT_ID", "test-client")
	t.Setenv("PORT_CLIENT_SECRET", harness.Secret)
	t.Setenv("KAFKA_USERNAME", "kafka-user-xyz")
	t.Setenv("KAFKA_PASSWORD", "kafka-password-xyz")
	t.Setenv("NOT_PASSED", "not-passed-value")

	h := harness.New(t, 1)
	cfg := h.Config(t, harness.Actions(`
  create_microservice: {command: ["env"]}
`))
	cfg.Executor.PassEnv = []string{"HTTPS_PROXY", "DEPLOY_TOKEN", "UNSET_IN_AGENT"}
	cfg.Kafka.SASL.Password = "kafka-password-xyz" // as if read from ${KAFKA_PASSWORD}; kfake ignores it without a mechanism
	h.NewRun(t, "r_passenv", "create_microservice")
	stop := h.Start(t, cfg).Stop
	run := h.WaitClosed(t, "r_passenv")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if run.Status != "SUCCESS" {
		t.Fatalf("run %s %q", run.Status, run.StatusLabel)
	}
	var log strings.Builder
	for _, e := range run.Logs {
		log.WriteString(e.Message + "\n")
	}
	out := log.String()
	if !strings.Contains(out, "HTTPS_PROXY="+proxy+"\n") {
		t.Errorf("the command's env lacks HTTPS_PROXY=%s:\n%s", proxy, out)
	}
	if !strings.Contains(out, "DEPLOY_TOKEN=***\n") {
		t.Errorf("a passed *_TOKEN is not masked in the log:\n%s", out)
	}
	if strings.Contains(out, "UNSET_IN_AGENT") {
		t.Errorf("a passEnv name the agent does not have was set:\n%s", out)
	}
	for _, leak := range []string{"PORT_CLIENT_SECRET", harness.Secret, "KAFKA_PASSWORD", "kafka-password-xyz", "KAFKA_USERNAME", "PORT_CLIENT_ID", "NOT_PASSED"} {
		if strings.Contains(out, leak) {
			t.Errorf("the command's env shows %q:\n%s", leak, out)
		}
	}
}

// TestPassEnvRefusesACredentialUnderAnotherName: validation refuses the conventional
// names; a variable of any other name that holds the client secret or the Kafka password is
// refused when the agent starts, because only it knows the values.
func TestPassEnvRefusesACredentialUnderAnotherName(t *testing.T) {
	h := harness.New(t, 1)
	for name, value := range map[string]string{"MY_PORT_KEY": harness.Secret, "MY_KAFKA_PW": "kafka-password-xyz"} {
		t.Setenv(name, value)
		cfg := h.Config(t, harness.Actions(`
  create_microservice: {command: ["env"]}
`))
		cfg.Kafka.SASL.Password = "kafka-password-xyz"
		cfg.Executor.PassEnv = []string{"HTTPS_PROXY", name}
		_, err := h.New(t, cfg)
		if err == nil || !strings.Contains(err.Error(), "executor.passEnv") || !strings.Contains(err.Error(), name) {
			t.Errorf("passEnv %s (a credential's value): New = %v, want an executor.passEnv error naming it", name, err)
		}
		if err != nil && strings.Contains(err.Error(), value) {
			t.Errorf("the error shows the credential: %v", err)
		}
	}
}

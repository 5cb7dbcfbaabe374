package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// kafka.brokers as one scalar is a comma list, so one variable (KAFKA_BROKERS="a:1,b:2") can
// hold every broker Port gives; a list keeps its elements as written.
func TestBrokersFromOneCommaList(t *testing.T) {
	vars := env(map[string]string{"KAFKA_BROKERS": "a:1, b:2,,c:3 ", "ONE": "a:1"})
	for _, tc := range []struct {
		yml  string
		want []string
	}{
		{"kafka: {brokers: ${KAFKA_BROKERS}}", []string{"a:1", "b:2", "c:3"}},
		{"kafka:\n  brokers: ${KAFKA_BROKERS}\n", []string{"a:1", "b:2", "c:3"}},
		{"kafka: {brokers: \"x:1,y:2\"}", []string{"x:1", "y:2"}},
		{"kafka: {brokers: ${ONE}}", []string{"a:1"}},
		{"kafka: {brokers: [\"${ONE}\", \"z:9\"]}", []string{"a:1", "z:9"}},
		{"kafka: {brokers: [\"${KAFKA_BROKERS}\"]}", []string{"a:1, b:2,,c:3 "}},
	} {
		c := mustParse(t, tc.yml, vars)
		if !reflect.DeepEqual(c.Kafka.Brokers, tc.want) {
			t.Errorf("%s: brokers = %q, want %q", tc.yml, c.Kafka.Brokers, tc.want)
		}
	}
	if c := mustParse(t, "kafka: {brokers: ${UNSET}}", vars); len(c.Kafka.Brokers) != 0 {
		t.Errorf("an unset variable gives brokers %q, want none", c.Kafka.Brokers)
	}
}

// A comma inside one list element is a list written as one string: validate says so
// instead of handing "a:1,b:2" to the Kafka client as one host.
func TestValidateRejectsCommaInABroker(t *testing.T) {
	c, _ := validConfig(t)
	c.Kafka.Brokers = []string{"a:1,b:2"}
	err := validate(c)
	if err == nil || !strings.Contains(err.Error(), "kafka.brokers[0]: ") || !strings.Contains(err.Error(), "comma") {
		t.Fatalf("Validate = %v, want kafka.brokers[0] naming the comma", err)
	}
}

func TestPassEnvAndCAFile(t *testing.T) {
	c := mustParse(t, `
port: {caFile: /etc/ssl/corp.pem}
executor: {passEnv: [HTTPS_PROXY, NO_PROXY, SSL_CERT_FILE]}
`, noEnv)
	if c.Port.CAFile != "/etc/ssl/corp.pem" || !reflect.DeepEqual(c.Executor.PassEnv, []string{"HTTPS_PROXY", "NO_PROXY", "SSL_CERT_FILE"}) {
		t.Errorf("port.caFile %q, executor.passEnv %q", c.Port.CAFile, c.Executor.PassEnv)
	}
}

// passEnv names variables of the agent's environment; it must never name the agent's own
// credentials nor the PORT_ variables the agent sets for commands. (A credential held under
// another name is refused by the agent, which knows the values: agent.New.)
func TestValidatePassEnv(t *testing.T) {
	for _, tc := range []struct {
		names []string
		key   string
	}{
		{[]string{"HTTPS_PROXY", "PORT_CLIENT_SECRET"}, "executor.passEnv[1]"},
		{[]string{"PORT_CLIENT_ID"}, "executor.passEnv[0]"},
		{[]string{"KAFKA_PASSWORD"}, "executor.passEnv[0]"},
		{[]string{"KAFKA_USERNAME"}, "executor.passEnv[0]"},
		{[]string{"PORT_RUNNER_CONFIG"}, "executor.passEnv[0]"},
		{[]string{"BAD-NAME"}, "executor.passEnv[0]"},
		{[]string{""}, "executor.passEnv[0]"},
	} {
		c, _ := validConfig(t)
		c.Executor.PassEnv = tc.names
		err := validate(c)
		var ps Problems
		if !errors.As(err, &ps) || !strings.Contains(err.Error(), tc.key+": ") {
			t.Errorf("passEnv %q: Validate = %v, want a problem at %s", tc.names, err, tc.key)
		}
	}
	c, _ := validConfig(t)
	c.Executor.PassEnv = []string{"HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "SSL_CERT_FILE", "AWS_REGION", "GITHUB_TOKEN", "PATH"}
	if err := validate(c); err != nil {
		t.Errorf("valid passEnv refused: %v", err)
	}
}

func TestValidatePortCAFile(t *testing.T) {
	c, _ := validConfig(t)
	c.Port.CAFile = "/nonexistent/ca.pem"
	if err := validate(c); err == nil || !strings.Contains(err.Error(), "port.caFile: ") {
		t.Errorf("Validate = %v, want a port.caFile problem", err)
	}
}

package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestSecretFiles: the client secret and the Kafka password can come from files (the chart
// mounts its Secret as files); errors name the key and never the content.
func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	secret := write("secret", "file-secret\n")
	pass := write("pass", "file-pass")
	cfgPath := write("c.yaml", `port: {clientID: id, clientSecretFile: `+secret+`, orgID: o}
kafka: {brokers: ["b:1"], group: o.g, sasl: {mechanism: PLAIN, username: u, passwordFile: `+pass+`}}
`)
	c, err := Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if c.Port.ClientSecret != "file-secret" || c.Kafka.SASL.Password != "file-pass" {
		t.Errorf("from files: secret %q, password %q", c.Port.ClientSecret, c.Kafka.SASL.Password)
	}
	if got := c.AgentSecrets(); !slices.Equal(got, []string{"file-secret", "file-pass"}) {
		t.Errorf("AgentSecrets = %q", got)
	}

	for _, tc := range []struct{ yml, key string }{
		{`port: {clientSecret: inline-value, clientSecretFile: ` + secret + `}`, "port.clientSecretFile"},
		{`kafka: {sasl: {passwordFile: ` + filepath.Join(dir, "missing") + `}}`, "kafka.sasl.passwordFile"},
		{`port: {clientSecretFile: ` + write("empty", "\n") + `}`, "port.clientSecretFile"},
	} {
		_, err := Load(write("bad.yaml", tc.yml))
		if err == nil || !strings.Contains(err.Error(), tc.key) || strings.Contains(err.Error(), "inline-value") {
			t.Errorf("%s: Load = %v, want an error naming %s without the value", tc.yml, err, tc.key)
		}
	}
}

func TestAgentSecretsSkipsEmpty(t *testing.T) {
	c := &Config{Port: Port{ClientSecret: "s"}}
	if got := c.AgentSecrets(); !slices.Equal(got, []string{"s"}) {
		t.Errorf("AgentSecrets = %q, want only the set one", got)
	}
}

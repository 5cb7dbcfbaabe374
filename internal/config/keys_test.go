package config

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/port-runner/port-runner/test/harness/vectors"
)

func TestClientSideKeys(t *testing.T) {
	// The keys the client-side vectors are made with: PKCS #8 and PKCS #1.
	s := Security{ClientSideKeyFiles: vectors.ClientSideVectors(t).KeyFiles}
	keys, err := s.ClientSideKeys()
	if err != nil || len(keys) != 2 || keys[0].Size() != 256 || keys[1].Size() != 384 {
		t.Fatalf("ClientSideKeys = %d keys, %v", len(keys), err)
	}
	// What a bad file gets: its name and why, never its content.
	dir := t.TempDir()
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	files := map[string][]byte{
		"small.pem":  pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(small)}),
		"public.pem": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("secret-bytes")}),
		"junk.pem":   []byte("secret-bytes, not PEM"),
		"bad.pem":    pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("secret-bytes")}),
	}
	for name, b := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Security{ClientSideKeyFiles: []string{path}}.ClientSideKeys()
		if err == nil || !strings.Contains(err.Error(), name) || strings.Contains(err.Error(), "secret-bytes") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// The keys issue 19 added are validated: each problem names its key.
func TestValidateRoutingAndKeys(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(c *Config)
		key    string
	}{
		{"bad when", func(c *Config) { a := c.Actions["day2"]; a.When = ".x =="; c.Actions["day2"] = a }, "actions.day2.when"},
		{"bad unmatched", func(c *Config) { c.WorkflowNodeRuns.Unmatched = "drop" }, "workflowNodeRuns.unmatched"},
		{"status interval too short", func(c *Config) { c.Port.RunStatusInterval = Duration(100 * time.Millisecond) }, "port.runStatusInterval"},
		{"status interval too long", func(c *Config) { c.Port.RunStatusInterval = Duration(2 * time.Hour) }, "port.runStatusInterval"},
		{"missing key file", func(c *Config) {
			c.Security.ClientSideKeyFiles = []string{vectors.ClientSideVectors(t).KeyFiles[0], "/nonexistent/k.pem"}
		}, "security.clientSideKeyFiles[1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := validConfig(t)
			tc.mutate(c)
			var ps Problems
			if err := validate(c); !errors.As(err, &ps) || !strings.Contains(err.Error(), tc.key+": ") {
				t.Fatalf("Validate = %v, want a problem for %s", err, tc.key)
			}
		})
	}
	c, _ := validConfig(t)
	a := c.Actions["day2"]
	a.When = `.payload.properties.cluster == "eu"`
	a.WorkflowNode = &WorkflowNode{URL: "https://port-runner.invalid/build"}
	c.Actions["day2"] = a
	c.Security.ClientSideKeyFiles = vectors.ClientSideVectors(t).KeyFiles
	if err := validate(c); err != nil {
		t.Fatalf("Validate(valid) = %v", err)
	}
}

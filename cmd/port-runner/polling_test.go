package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/port-runner/port-runner/internal/emulator"
)

// transport: polling without a kafka: section validates, and --connect checks Port's
// claim route instead of brokers.
func TestValidatePolling(t *testing.T) {
	base := startEmulator(t, emulator.Options{ClientID: "cid", ClientSecret: "csecret", Delivery: emulator.DeliveryPolling})
	path := filepath.Join(t.TempDir(), "polling.yaml")
	yml := "transport: polling\nport:\n  baseURL: " + base + "\n  clientID: cid\n  clientSecret: csecret\n" +
		"actions:\n  deploy:\n    command: [\"/bin/true\"]\n"
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCmd("validate", "--config", path)
	if code != exitOK || !strings.Contains(stdout, "transport polling") || strings.Contains(stdout, "topic") {
		t.Fatalf("validate: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runCmd("validate", "--connect", "--config", path)
	if code != exitOK || !strings.Contains(stdout, "ok       port claim API") || strings.Contains(stdout, "kafka") {
		t.Fatalf("validate --connect: exit %d\n%s%s", code, stdout, stderr)
	}
}

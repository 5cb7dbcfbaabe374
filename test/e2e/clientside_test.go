package e2e_test

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/test/harness"
	"github.com/port-runner/port-runner/test/harness/vectors"
)

// Client-side secret inputs (encrypted in the browser with the input's RSA public key) made
// by an independent implementation (Python's cryptography: the client-side vectors) reach
// the command decrypted with the private key from security.clientSideKeyFiles, and their
// plaintext is in no log, Port's or the agent's.
func TestClientSideSecretInputs(t *testing.T) {
	cs := vectors.ClientSideVectors(t)
	keys, err := config.Security{ClientSideKeyFiles: cs.KeyFiles}.ClientSideKeys()
	if err != nil {
		t.Fatal(err)
	}
	// The emulator seals one more input as Port's browser would, with the first key.
	h := harness.New(t, 1, harness.WithPort(func(o *emulator.Options) {
		o.ClientSideInputs = map[string]map[string]*rsa.PublicKey{"rotate": {"secret": &keys[0].PublicKey}}
	}))
	seen := t.TempDir()
	keyFiles, _ := json.Marshal(cs.KeyFiles)
	cfg := h.Config(t, quickLogs+fmt.Sprintf(`
security: {clientSideKeyFiles: %s}
actions:
  rotate:
    command: [/bin/sh, -c, 'printf "%%s" "$SECRET" > "$SEEN/$PORT_RUN_ID"; echo "rotating with $SECRET"']
    env: {SECRET: .properties.secret, SEEN: %q}
`, keyFiles, `"`+seen+`"`))
	a := h.Start(t, cfg)

	plain := map[string]string{}
	for i, v := range cs.Valid {
		id := fmt.Sprintf("r_clientside%d", i)
		typ := "string"
		if v.Name == "object" {
			typ = "object"
		}
		schema, _ := json.Marshal(map[string]any{"secret": map[string]any{"type": typ,
			"encryption": map[string]string{"algorithm": "client-side", "key": v.PublicKey}}})
		msg := h.Sign(t, fmt.Sprintf(
			`{"action":"rotate","context":{"runId":%q},"payload":{"action":{"identifier":"rotate","userInputs":{"properties":%s}},"properties":{"secret":%q}},"headers":{}}`,
			id, schema, v.Encrypted))
		h.Emu.RegisterRun(id, "rotate")
		h.Produce(t, []byte(id), msg)
		plain[id] = v.Plaintext
	}
	created, err := h.Emu.CreateRun(context.Background(), "rotate", emulator.CreateRunRequest{Properties: map[string]any{"secret": "emulator-sealed-s3cret"}})
	if err != nil {
		t.Fatal(err)
	}
	plain[created.ID] = "emulator-sealed-s3cret"

	var portLogs strings.Builder
	for id, want := range plain {
		run := h.WaitClosed(t, id)
		portLogs.WriteString(logText(run))
		got, _ := os.ReadFile(filepath.Join(seen, id))
		if run.Status != "SUCCESS" || !sameSecret(string(got), want) {
			t.Errorf("run %s: %s %q; the command got %q, want %q", id, run.Status, run.StatusLabel, got, want)
		}
	}
	secrets := []string{"tok-123"} // the object input's token, masked on its own
	for _, p := range plain {
		if len(p) >= 4 {
			secrets = append(secrets, p)
		}
	}
	agentLog := a.LogText()
	for _, s := range secrets {
		if strings.Contains(portLogs.String(), s) || strings.Contains(agentLog, s) {
			t.Errorf("%q shows in a log", s)
		}
	}
	if !strings.Contains(portLogs.String(), "rotating with ***") {
		t.Errorf("the masked line is missing from Port's logs:\n%s", portLogs.String())
	}
}

// sameSecret compares what the command got with the plaintext: an object input reaches env
// as its JSON value, re-encoded.
func sameSecret(got, want string) bool {
	if got == want {
		return true
	}
	var g, w any
	return json.Unmarshal([]byte(got), &g) == nil && json.Unmarshal([]byte(want), &w) == nil && fmt.Sprint(g) == fmt.Sprint(w)
}

package agent

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/test/harness/vectors"
)

// A client-side secret input (encryption: {algorithm: client-side, key: PEM}) is decrypted
// with the private key whose public half the schema names, for the command only, and masked;
// one the action's secretInputs names without a schema is found by trying the keys.
func TestDecryptClientSideInputs(t *testing.T) {
	cs := vectors.ClientSideVectors(t) // made with Python's cryptography
	keys, err := config.Security{ClientSideKeyFiles: cs.KeyFiles}.ClientSideKeys()
	if err != nil {
		t.Fatal(err)
	}
	vs := cs.Valid
	pw, obj := vs[0], vs[len(vs)-1] // "password", "object"
	act, err := newAction("a", config.Action{Command: []string{"true"}, SecretInputs: []string{"listed"},
		Env: map[string]string{"PW": ".properties.pw", "TOKEN": ".properties.conf.token", "L": ".properties.listed"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	act.secretKey, act.keys = testKey, keys
	schema, _ := json.Marshal(map[string]any{
		"pw":   map[string]any{"type": "string", "encryption": map[string]any{"algorithm": "client-side", "key": pw.PublicKey}},
		"conf": map[string]any{"type": "object", "encryption": map[string]any{"algorithm": "client-side", "key": obj.PublicKey}},
	})
	run := secretRun(t, string(schema), map[string]string{"pw": pw.Encrypted, "conf": obj.Encrypted, "listed": vs[2].Encrypted})
	spec, masks, err := act.spec(run)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Env["PW"] != pw.Plaintext || spec.Env["TOKEN"] != "tok-123" || spec.Env["L"] != vs[2].Plaintext {
		t.Fatalf("env = %v", spec.Env)
	}
	for _, want := range []string{pw.Plaintext, "tok-123", vs[2].Plaintext} {
		if !slices.Contains(masks, want) {
			t.Errorf("%q is not masked (masks %d)", want, len(masks))
		}
	}
	if !strings.Contains(string(spec.RunFile), pw.Plaintext) {
		t.Error("the run file lacks the decrypted input")
	}
	// Without the key: the run fails naming the input and the setting, never the value.
	act.keys = keys[1:]
	_, _, err = act.spec(run)
	if err == nil || !strings.Contains(err.Error(), `secret input "conf"`) || !strings.Contains(err.Error(), "clientSideKeyFiles") ||
		strings.Contains(err.Error(), obj.Encrypted[:12]) || strings.Contains(err.Error(), "tok-123") {
		t.Fatalf("spec without the key: %v", err)
	}
}

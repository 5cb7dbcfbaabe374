// Package vectors is where the test vectors are and the secrets they are signed with: the
// one place the tests know either. The shared signed message vectors (shared/vectors, beside
// the repository or above it, signed with Secret); Port's own message shapes (port/, beside
// this file, signed with PortAgentSecret as port-agent's tests sign them; port/SOURCES.md
// names each one's source); the client-side secret inputs made with Python's cryptography
// (clientside/, its make_vectors.py). It imports nothing of the module, so the unit tests of
// the packages the harness builds on (runmsg, emulator, agent, config) use it too; the
// harness's Port organization signs with Secret.
package vectors

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Secret is the Port client secret the shared vectors are signed with.
const Secret = "test-client-secret-0123456789abcdef"

// PortAgentSecret is the client secret port-agent's tests sign Port's shapes with (PortDir).
const PortAgentSecret = "test"

// Dir is the shared vectors' directory; the test fails without one.
func Dir(t testing.TB) string {
	t.Helper()
	root := filepath.Join(here(), "..", "..", "..") // the module's root
	for dir := filepath.Dir(root); ; dir = filepath.Dir(dir) {
		if st, err := os.Stat(filepath.Join(dir, "shared", "vectors")); err == nil && st.IsDir() {
			return filepath.Join(dir, "shared", "vectors")
		}
		if dir == filepath.Dir(dir) {
			t.Fatalf("vectors: no shared/vectors above %s", root)
		}
	}
}

// here is this package's directory.
func here() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// PortDir is the directory of Port's own message shapes, from port-agent's and Ocean's
// tests and Port's docs (its SOURCES.md names each one's source).
func PortDir() string { return filepath.Join(here(), "port") }

// ClientSide are the client-side secret input vectors (clientside/vectors.json): values
// encrypted with the public halves of KeyFiles by an implementation independent of the
// agent's.
type ClientSide struct {
	KeyFiles   []string          // the private keys' PEM files, absolute
	PublicKeys map[string]string // PEM by key file name ("other": a key of no file)
	Valid      []ClientSideValue
	Invalid    []ClientSideValue // Plaintext empty: none of them decrypts
}

// ClientSideValue is one encrypted value; PublicKey is the PEM its schema names.
type ClientSideValue struct{ Name, Plaintext, PublicKey, Encrypted string }

// ClientSideVectors reads the client-side vectors; the test fails without them.
func ClientSideVectors(t testing.TB) ClientSide {
	t.Helper()
	dir := filepath.Join(here(), "clientside")
	var v struct {
		Keys       []string          `json:"keys"`
		PublicKeys map[string]string `json:"publicKeys"`
		Valid      []ClientSideValue `json:"valid"`
		Invalid    []ClientSideValue `json:"invalid"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "vectors.json"))
	if err == nil {
		err = json.Unmarshal(b, &v)
	}
	if err != nil {
		t.Fatalf("vectors: client-side: %v", err)
	}
	cs := ClientSide{PublicKeys: v.PublicKeys, Valid: v.Valid, Invalid: v.Invalid}
	for _, k := range v.Keys {
		cs.KeyFiles = append(cs.KeyFiles, filepath.Join(dir, k))
	}
	return cs
}

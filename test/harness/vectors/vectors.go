// Package vectors is where the shared signed message vectors are (shared/vectors, beside the
// repository or above it) and the client secret they are signed with: the one place the
// tests know either. It imports nothing of the module, so the unit tests of the packages the
// harness builds on (runmsg, emulator) use it too; the harness's Port organization signs
// with the same secret.
package vectors

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Secret is the Port client secret the shared vectors are signed with.
const Secret = "test-client-secret-0123456789abcdef"

// Dir is the shared vectors' directory; the test fails without one.
func Dir(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..", "..") // the module's root
	for dir := filepath.Dir(root); ; dir = filepath.Dir(dir) {
		if st, err := os.Stat(filepath.Join(dir, "shared", "vectors")); err == nil && st.IsDir() {
			return filepath.Join(dir, "shared", "vectors")
		}
		if dir == filepath.Dir(dir) {
			t.Fatalf("vectors: no shared/vectors above %s", root)
		}
	}
}

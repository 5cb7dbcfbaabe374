//go:build cgo && linux

package cshimtest

import (
	"strconv"
	"testing"

	"github.com/port-runner/port-runner/internal/shim"
)

// FuzzStatPPid: a command chooses its comm, which /proc/PID/stat shows in parentheses; the
// C shim reads the ppid after it exactly as the Go shim does, for any bytes.
func FuzzStatPPid(f *testing.F) {
	for _, s := range []string{"1234 (sh) S 42 1234", "1234 (a) b) c) R 7 1 1", "1234 (x) S", "garbage", ")", ") S ", "1 (x) S 1234567890 1", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, g := StatPPid(b), shim.StatPPid(b); c != g {
			t.Fatalf("stat line %q: the C shim reads ppid %d, the Go shim %d", b, c, g)
		}
		line := []byte("1 (" + string(b) + ") S " + strconv.Itoa(len(b)) + " 1")
		if c := StatPPid(line); c != len(b) {
			t.Fatalf("comm %q: the C shim reads ppid %d, want %d", b, c, len(b))
		}
	})
}

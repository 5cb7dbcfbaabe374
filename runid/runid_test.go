package runid

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, ok := range []string{"r_1", "r_Ab-9", "RUN_ID", "r", strings.Repeat("a", MaxLen)} {
		if err := Check(ok); err != nil {
			t.Errorf("Check(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "../x", "a/b", "a%2Fb", "r.1", "r 1", "r\x00", "é", "r?x", "r#x", strings.Repeat("a", MaxLen+1)} {
		if err := Check(bad); err == nil {
			t.Errorf("Check(%q) = nil, want an error", bad)
		}
	}
}

func FuzzCheck(f *testing.F) {
	for _, s := range []string{"r_1", "..", ".", "a/b", "%2e%2e", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if Check(s) != nil {
			return
		}
		if s == "." || s == ".." || strings.ContainsAny(s, "./%?#\\ ") || s == "" {
			t.Fatalf("Check(%q) accepted a path-changing id", s)
		}
	})
}

package runmsg

import (
	"strings"
	"testing"
)

func TestCheckID(t *testing.T) {
	for _, ok := range []string{"r_1", "r_Ab-9", "RUN_ID", "r", strings.Repeat("a", MaxIDLen)} {
		if err := CheckID(ok); err != nil {
			t.Errorf("CheckID(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "../x", "a/b", "a%2Fb", "r.1", "r 1", "r\x00", "é", "r?x", "r#x", strings.Repeat("a", MaxIDLen+1)} {
		if err := CheckID(bad); err == nil {
			t.Errorf("CheckID(%q) = nil, want an error", bad)
		}
	}
}

func FuzzCheckID(f *testing.F) {
	for _, s := range []string{"r_1", "..", ".", "a/b", "%2e%2e", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if CheckID(s) != nil {
			return
		}
		if s == "." || s == ".." || strings.ContainsAny(s, "./%?#\\ ") || s == "" {
			t.Fatalf("CheckID(%q) accepted a path-changing id", s)
		}
	})
}

package echo

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCutAndQuote(t *testing.T) {
	for _, c := range []struct{ in, cut, quote string }{
		{"", "", `""`},
		{"abc", "abc", `"abc"`},
		{strings.Repeat("a", MaxBytes), strings.Repeat("a", MaxBytes), `"` + strings.Repeat("a", MaxBytes) + `"`},
		{strings.Repeat("a", 1<<20), strings.Repeat("a", MaxBytes) + "... (1048576 bytes)", `"` + strings.Repeat("a", MaxBytes) + `"... (1048576 bytes)`},
		// A cut never splits a rune: "é" is 2 bytes, so 63 'a's and it end at byte 65.
		{strings.Repeat("a", MaxBytes-1) + "é" + "zz", strings.Repeat("a", MaxBytes-1) + "... (67 bytes)", `"` + strings.Repeat("a", MaxBytes-1) + `"... (67 bytes)`},
		{"line\nbreak", "line\nbreak", `"line\nbreak"`},
	} {
		if got := Cut(c.in); got != c.cut {
			t.Errorf("Cut(%.80q) = %q, want %q", c.in, got, c.cut)
		}
		if got := Quote(c.in); got != c.quote {
			t.Errorf("Quote(%.80q) = %q, want %q", c.in, got, c.quote)
		}
	}
}

func FuzzCut(f *testing.F) {
	f.Add("")
	f.Add(strings.Repeat("é", 100))
	f.Add(strings.Repeat("\xff", 200))
	f.Fuzz(func(t *testing.T, s string) {
		c, q := Cut(s), Quote(s)
		if len(c) > MaxBytes+32 || len(q) > 4*MaxBytes+32 {
			t.Fatalf("echo of %d bytes: cut %d, quoted %d", len(s), len(c), len(q))
		}
		if utf8.ValidString(s) && !utf8.ValidString(c) {
			t.Fatalf("Cut split a rune: %q", c)
		}
		if len(s) <= MaxBytes && c != s {
			t.Fatalf("Cut(%q) = %q: a short value is kept whole", s, c)
		}
	})
}

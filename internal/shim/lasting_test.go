package shim

import "testing"

// TestLastingReader: an 'L' message gives its milliseconds once its ';' comes; its bytes are
// used up, and a byte that breaks one is read as itself (a 'T' or 'K' is never lost).
func TestLastingReader(t *testing.T) {
	for _, tc := range []struct {
		in     string
		ms     []int64 // the messages read, in order
		passed string  // the bytes read as themselves
	}{
		{in: "L120000;", ms: []int64{120000}},
		{in: string(LastingMessage(42)) + "R" + string(LastingMessage(0)), ms: []int64{42, 0}, passed: "R"},
		{in: "L12T", passed: "T"},
		{in: "L12L7;K", ms: []int64{7}, passed: "K"},
		{in: "L99999999999999999999;", ms: []int64{maxLastingMs}},
		{in: "7;RT", passed: "7;RT"},
		{in: string(LastingMessage(-5)), ms: []int64{0}},
	} {
		r := newLastingReader()
		var ms []int64
		var passed []byte
		for _, b := range []byte(tc.in) {
			used, n, done := r.feed(b)
			if !used {
				passed = append(passed, b)
			}
			if done {
				ms = append(ms, n)
			}
		}
		if string(passed) != tc.passed || len(ms) != len(tc.ms) {
			t.Errorf("%q: read %v and passed %q, want %v and %q", tc.in, ms, passed, tc.ms, tc.passed)
			continue
		}
		for i := range ms {
			if ms[i] != tc.ms[i] {
				t.Errorf("%q: read %v, want %v", tc.in, ms, tc.ms)
			}
		}
	}
}

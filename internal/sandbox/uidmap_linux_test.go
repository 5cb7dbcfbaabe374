package sandbox

import (
	"bufio"
	"strings"
	"testing"
)

// The uid map is read on Linux only (caps_linux.go): its parser's tests build there.

func FuzzUIDMap(f *testing.F) {
	for _, s := range []string{"0 0 4294967295\n", "0 100000 65536\n", "1000 1000 1\n", "x y z\n", "-1 0 5"} {
		f.Add(s, 20000, 20999)
	}
	f.Fuzz(func(t *testing.T, s string, lo, hi int) {
		if uidRangeMapped(bufio.NewScanner(strings.NewReader(s)), lo, hi) && lo > hi && s == "" {
			t.Fatal("an empty map holds nothing")
		}
	})
}

func TestUIDMapParser(t *testing.T) {
	if !uidRangeMapped(bufio.NewScanner(strings.NewReader("0 100000 65536\n")), 20000, 20999) ||
		uidRangeMapped(bufio.NewScanner(strings.NewReader("0 100000 1000\n")), 20000, 20999) {
		t.Error("uidRangeMapped")
	}
}

package sizetest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestProblems(t *testing.T) {
	dir := t.TempDir()
	long := "package p\n\nfunc long() {\n" + strings.Repeat("\t_ = 1\n", 10) + "}\n\nfunc short() {}\n"
	if err := os.WriteFile(filepath.Join(dir, "p.go"), []byte(long), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "p_test.go"), []byte("package p\n"+strings.Repeat("\n", 9)), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Problems(dir, Limits{File: 10, Func: 5})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"p.go: 16 lines, over 10", "p.go:3: long is 12 lines, over 5"} // p_test.go: 10 lines
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("Problems = %q, want %q", got, want)
	}
	if got, _ := Problems(dir, Limits{File: 100, Func: 100}); len(got) != 0 {
		t.Fatalf("within limits: %q", got)
	}
}

package sizetest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// module is the repository's rule: production code within 300 lines a file and 80 a
// function; test code (_test.go files and everything under test/) within twice that a file,
// since a test file holds many cases of one thing, and 150 a function.
func module() Policy {
	return Policy{
		Code: Limits{File: 300, Func: 80},
		Test: Limits{File: 600, Func: 150},
		IsTest: func(path string) bool {
			return strings.HasSuffix(path, "_test.go") || strings.HasPrefix(path, "test/")
		},
		Exceptions: map[string]string{
			// Production code.
			"internal/agent/agent.go": "the agent's assembly and its start and stop order: " +
				"split with the run-lifecycle rewrite",
			// Test code.
			"internal/config/config_test.go":  "case tables for every config section: split by section when next changed",
			"internal/portapi/client_test.go": "every call and answer class of the client: split by topic when next changed",
			"internal/runmsg/runmsg_test.go":  "every message shape and signature case: split by topic when next changed",
		},
	}
}

// TestModule checks every Go file of the repository (the agent's module and the charts/
// and test/monitoring/ modules inside it) against the rule.
func TestModule(t *testing.T) {
	root := moduleRoot(t)
	problems, err := module().Problems(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// moduleRoot is the nearest directory above this package's with a go.mod: the module's root.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the package")
		}
		dir = parent
	}
}

package main

import (
	"os"
	"strings"
	"testing"
)

const changelog = `# Changelog

## [Unreleased]

## [1.2.0] - 2026-12-01
### Added
- /status names the replica.

### Fixed
- An alert when the agent is down.

## [1.1.0] - 2026-11-01
- Older.
`

func TestSection(t *testing.T) {
	got, err := Section([]byte(changelog), "1.2.0")
	if err != nil {
		t.Fatal(err)
	}
	if want := "### Added\n- /status names the replica.\n\n### Fixed\n- An alert when the agent is down.\n"; got != want {
		t.Errorf("1.2.0 notes = %q, want %q", got, want)
	}
	if got, err := Section([]byte(changelog), "Unreleased"); err != nil || got != "" {
		t.Errorf("Unreleased = %q, %v; want empty, no error", got, err)
	}
	for _, v := range []string{"1.3.0", "1.2", "2.0.0"} {
		if _, err := Section([]byte(changelog), v); err == nil || !strings.Contains(err.Error(), "no section") {
			t.Errorf("version %s: %v, want no section", v, err)
		}
	}
	if _, err := Section([]byte("## [1.0.0]\n\n## [0.9.0]\n- x\n"), "1.0.0"); err == nil {
		t.Error("an empty release section passed")
	}
}

// The repository's own CHANGELOG.md has the Unreleased section a snapshot build reads.
func TestRepositoryChangelog(t *testing.T) {
	b, err := os.ReadFile("../../CHANGELOG.md")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Section(b, "Unreleased"); err != nil {
		t.Error(err)
	}
}

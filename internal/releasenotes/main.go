// Command releasenotes prints a version's section of CHANGELOG.md (Keep a Changelog: one
// "## [X.Y.Z] - date" heading per release, "## [Unreleased]" on top): the release notes
// GoReleaser publishes (.goreleaser.yaml's before hook; README "Releases").
//
//	go run ./internal/releasenotes -version 1.2.3 [-snapshot] [-changelog CHANGELOG.md] [-out FILE]
//
// A release whose version has no section, or an empty one, fails: the notes are written
// before the tag. A snapshot takes the Unreleased section.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	version := flag.String("version", "", "the release's version (X.Y.Z, a leading v is dropped)")
	snapshot := flag.Bool("snapshot", false, "a snapshot build: the Unreleased section")
	changelog := flag.String("changelog", "CHANGELOG.md", "the changelog")
	out := flag.String("out", "", "write the notes here (default: stdout)")
	flag.Parse()
	if err := run(*changelog, *version, *snapshot, *out); err != nil {
		fmt.Fprintf(os.Stderr, "releasenotes: %v\n", err)
		os.Exit(1)
	}
}

func run(changelog, version string, snapshot bool, out string) error {
	b, err := os.ReadFile(changelog)
	if err != nil {
		return err
	}
	heading := strings.TrimPrefix(version, "v")
	if snapshot {
		heading = "Unreleased"
	}
	notes, err := Section(b, heading)
	if err != nil {
		return fmt.Errorf("%s: %w", changelog, err)
	}
	if snapshot && notes == "" {
		notes = "No changes since the last release.\n"
	}
	if out == "" {
		_, err = os.Stdout.WriteString(notes)
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(out, []byte(notes), 0o644)
}

// Section is the body of the "## [heading]" section of a Keep a Changelog file, without
// its heading, up to the next "## " heading; an error when there is no such section, or
// when a release's is empty.
func Section(changelog []byte, heading string) (string, error) {
	var body []string
	found, in := false, false
	sc := bufio.NewScanner(bytes.NewReader(changelog))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			if in {
				break
			}
			in = strings.HasPrefix(line, "## ["+heading+"]")
			found = found || in
			continue
		}
		if in {
			body = append(body, line)
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	if !found {
		return "", fmt.Errorf("no section \"## [%s]\": write the release's notes there (move them from Unreleased) before tagging", heading)
	}
	notes := strings.TrimSpace(strings.Join(body, "\n"))
	if notes == "" && heading != "Unreleased" {
		return "", errors.New("the section \"## [" + heading + "]\" is empty")
	}
	if notes != "" {
		notes += "\n"
	}
	return notes, nil
}

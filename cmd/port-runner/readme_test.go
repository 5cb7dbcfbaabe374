package main

import (
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
)

// readme is the repository's README.md, where users read how the CLI is called.
func readme(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// README's "Two commands" shows exactly two: the demo and the test command.
func TestReadmeTwoCommands(t *testing.T) {
	text := readme(t)
	_, section, ok := strings.Cut(text, "\n## Two commands\n")
	if !ok {
		t.Fatal(`README has no "Two commands" section`)
	}
	block := regexp.MustCompile("(?s)```sh\n(.*?)```").FindStringSubmatch(section)
	if block == nil {
		t.Fatal(`"Two commands" has no sh block`)
	}
	var commands []string
	for line := range strings.Lines(block[1]) {
		if cmd, _, _ := strings.Cut(line, "#"); strings.TrimSpace(cmd) != "" {
			commands = append(commands, strings.TrimSpace(cmd))
		}
	}
	if len(commands) != 2 || commands[0] != "go run ./cmd/port-runner demo" || commands[1] != "scripts/test" {
		t.Errorf(`"Two commands" shows %q, want the demo and scripts/test`, commands)
	}
}

// Every port-runner call README shows, in its sh blocks and code spans, names a command and
// only flags that command has.
func TestReadmeCallsExist(t *testing.T) {
	text := readme(t)
	var calls []string
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(text, -1) {
		for line := range strings.Lines(m[1]) {
			line, _, _ = strings.Cut(line, "#")
			line = strings.TrimPrefix(strings.TrimSpace(line), "go run ./cmd/")
			if strings.HasPrefix(line, "port-runner ") {
				calls = append(calls, line)
			}
		}
	}
	for _, m := range regexp.MustCompile("`(port-runner [^`]*)`").FindAllStringSubmatch(text, -1) {
		calls = append(calls, m[1])
	}
	if len(calls) < 10 {
		t.Fatalf("found only %d port-runner calls in README: %q", len(calls), calls)
	}
	for _, call := range calls {
		words := strings.Fields(call)
		c, ok := lookup(words[1])
		if !ok {
			t.Errorf("README calls %q: no command %q", call, words[1])
			continue
		}
		fs := c.flagSet(io.Discard)
		c.flags(fs)
		for _, w := range words[2:] {
			name, isFlag := strings.CutPrefix(strings.TrimLeft(w, "[("), "--")
			name, _, _ = strings.Cut(name, "=")
			name = strings.TrimRight(name, "])")
			if isFlag && fs.Lookup(name) == nil {
				t.Errorf("README calls %q: %s has no flag --%s", call, c.name, name)
			}
		}
	}
}

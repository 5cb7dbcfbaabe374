// Command port-runner executes Port self-service action runs from Kafka. See README.md.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/port-runner/port-runner/internal/shim"
)

// Exit codes (README "Running the agent").
const (
	exitOK      = 0
	exitRuntime = 1
	exitUsage   = 2
)

func main() {
	// The agent's binary also serves as each command's shim when port-runner-shim is not
	// beside it (package internal/shim); that role comes first, before anything of the agent.
	if len(os.Args) > 1 && os.Args[1] == shim.Command {
		os.Exit(shim.Main(os.Args[2:]))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// commands is every subcommand, in the order the global usage lists them.
func commands() []command {
	return []command{runCommand(), validateCommand(), tryCommand(), demoCommand(), emulatorCommand(), versionCommand(), helpCommand()}
}

// run dispatches args to their subcommand and returns the process's exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printGlobalUsage(stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help":
		name = "help"
	case "-v", "--version":
		name = "version"
	}
	c, ok := lookup(name)
	if !ok {
		fmt.Fprintf(stderr, "port-runner: unknown command %q\n\n", name)
		printGlobalUsage(stderr)
		return exitUsage
	}
	return c.main(args[1:], stdout, stderr)
}

func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

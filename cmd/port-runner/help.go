package main

import (
	"flag"
	"fmt"
	"io"
)

func helpCommand() command {
	return command{
		name:     "help",
		synopsis: "[COMMAND]",
		summary:  "The usage of port-runner, or of COMMAND with its flags (as COMMAND -h prints it).",
		operands: []string{"[COMMAND]"},
		flags: func(*flag.FlagSet) func([]string, io.Writer, io.Writer) int {
			return func(operands []string, stdout, stderr io.Writer) int {
				if len(operands) == 0 {
					printGlobalUsage(stdout)
					return exitOK
				}
				c, ok := lookup(operands[0])
				if !ok {
					fmt.Fprintf(stderr, "port-runner help: unknown command %q\n\n", operands[0])
					printGlobalUsage(stderr)
					return exitUsage
				}
				c.printUsage(stdout)
				return exitOK
			}
		},
	}
}

// printGlobalUsage lists every command with its synopsis and summary.
func printGlobalUsage(w io.Writer) {
	fmt.Fprint(w, "port-runner executes Port self-service action runs from Kafka (or Port's claim API).\n\nUsage:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %s\n      %s\n", c.usageLine(), c.summary)
	}
	fmt.Fprint(w, "\n`port-runner COMMAND -h` (or `port-runner help COMMAND`) prints a command's flags.\n"+
		"Exit codes: 0 ok, 1 runtime failure, 2 bad usage or bad config.\n")
}

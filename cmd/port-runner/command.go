package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// A command is one subcommand: what it does, its flags and operands, and its work.
type command struct {
	name     string
	synopsis string   // what follows the name in the usage: "--config FILE [--connect]"
	summary  string   // what it does, one line, for the global usage and its own
	detail   string   // more for its own usage: exit codes, environment
	operands []string // its positional arguments in order, "[NAME]" when optional; no others are accepted
	// flags declares the command's flags on fs and returns its work, run once the arguments
	// are parsed with the operands in order.
	flags func(fs *flag.FlagSet) func(operands []string, stdout, stderr io.Writer) int
}

// main parses args, refusing any flag or argument the command does not take, and runs it.
// -h, -help and --help print its usage on stdout and succeed.
func (c command) main(args []string, stdout, stderr io.Writer) int {
	fs := c.flagSet(stderr)
	work := c.flags(fs)
	operands, err := parseInterspersed(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		c.printUsage(stdout)
		return exitOK
	case err != nil: // the flag package has said what is wrong
		return c.usageError(stderr, "")
	case len(operands) < c.required():
		return c.usageError(stderr, c.operands[len(operands)]+" is required")
	case len(operands) > len(c.operands):
		return c.usageError(stderr, fmt.Sprintf("unexpected argument %q%s", operands[len(c.operands)], c.strayHint(fs)))
	}
	return work(operands, stdout, stderr)
}

// usageError reports a usage problem the way the go command does: the problem, how the
// command is called, and where its flags are described.
func (c command) usageError(stderr io.Writer, problem string) int {
	if problem != "" {
		fmt.Fprintf(stderr, "port-runner %s: %s\n", c.name, problem)
	}
	fmt.Fprintf(stderr, "usage: %s\nRun 'port-runner help %s' for its flags.\n", c.usageLine(), c.name)
	return exitUsage
}

// required is the number of operands the command cannot do without.
func (c command) required() int {
	n := 0
	for _, o := range c.operands {
		if !strings.HasPrefix(o, "[") {
			n++
		}
	}
	return n
}

// strayHint tells where an argument probably belongs: a config file after --config.
func (c command) strayHint(fs *flag.FlagSet) string {
	if len(c.operands) == 0 && fs.Lookup("config") != nil {
		return " (the file goes after --config)"
	}
	return ""
}

// flagSet is the command's empty flag set: it reports parse errors to stderr and leaves its
// usage to printUsage, so that help goes to stdout.
func (c command) flagSet(stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {}
	return fs
}

// usageLine is how the command is called: "port-runner validate --config FILE [--connect]".
func (c command) usageLine() string {
	return strings.TrimSpace("port-runner " + c.name + " " + c.synopsis)
}

// printUsage writes the command's synopsis, summary and flags to w.
func (c command) printUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", c.usageLine(), c.summary)
	if c.detail != "" {
		fmt.Fprintf(w, "\n%s\n", c.detail)
	}
	fs := c.flagSet(w)
	c.flags(fs)
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprint(w, "\nFlags:\n")
		fs.PrintDefaults()
	}
}

// parseInterspersed parses flags wherever they stand among the operands (`try ACTION
// --entity ID` as well as `try --entity ID ACTION`) and returns the operands in order. After
// "--" everything is an operand.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var operands []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return operands, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(operands, rest...), nil
		}
		operands, args = append(operands, rest[0]), rest[1:]
	}
}

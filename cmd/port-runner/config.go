package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/runmsg"
)

// configFlag declares --config, whose default is PORT_RUNNER_CONFIG.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", os.Getenv("PORT_RUNNER_CONFIG"), "config file (or PORT_RUNNER_CONFIG)")
}

// loadConfig reads and validates the config at path for the command name and reports every
// problem it has at once, each with its key and line.
func loadConfig(name, path string, stderr io.Writer) (*config.Config, int) {
	if path == "" {
		fmt.Fprintf(stderr, "port-runner %s: --config FILE is required (or set PORT_RUNNER_CONFIG)\n", name)
		return nil, exitUsage
	}
	cfg, lines, problems := config.LoadAll(path)
	if cfg != nil {
		var vs config.Problems
		if err := cfg.Validate(runmsg.CompileSelector, exec.LookPath); errors.As(err, &vs) {
			problems = append(problems, notUnder(vs, problems)...)
		}
	}
	if len(problems) > 0 {
		fmt.Fprintf(stderr, "port-runner %s: %s is not valid (%d problem(s)):\n", name, path, len(problems))
		for _, p := range problems.WithLines(lines) {
			for _, line := range strings.Split(p.Error(), "\n") {
				fmt.Fprintf(stderr, "  %s\n", line)
			}
		}
		return nil, exitUsage
	}
	return cfg, exitOK
}

// notUnder drops the problems about keys that an earlier problem already covers: a value
// that did not decode is left out, and validation would only add "required" for it.
func notUnder(ps, earlier config.Problems) config.Problems {
	var out config.Problems
	for _, p := range ps {
		covered := false
		for _, e := range earlier {
			k, ek := config.Key(p), config.Key(e)
			if ek != "" && (k == ek || strings.HasPrefix(k, ek+".") || strings.HasPrefix(k, ek+"[")) {
				covered = true
			}
		}
		if !covered {
			out = append(out, p)
		}
	}
	return out
}

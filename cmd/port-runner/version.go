package main

import (
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version and commit are set at build time (the Dockerfile's VERSION and COMMIT build
// args): -ldflags "-X main.version=v1.2.3 -X main.commit=abc123". Without commit, the VCS
// revision Go stamps into a build from a git checkout is used.
var (
	version = "dev"
	commit  = ""
)

func versionCommand() command {
	return command{
		name:    "version",
		summary: "The version, commit, Go version and platform of this build.",
		flags: func(*flag.FlagSet) func([]string, io.Writer, io.Writer) int {
			return func(_ []string, stdout, _ io.Writer) int {
				fmt.Fprintln(stdout, versionString())
				return exitOK
			}
		},
	}
}

func versionString() string {
	rev := commit
	if bi, ok := debug.ReadBuildInfo(); ok && rev == "" {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				rev = s.Value
			}
		}
	}
	if rev == "" {
		rev = "unknown"
	}
	return fmt.Sprintf("port-runner %s (commit %s, %s %s/%s)", version, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

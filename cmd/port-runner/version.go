package main

import (
	"encoding/json"
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
		name:     "version",
		synopsis: "[--json]",
		summary:  "The version, commit, Go version and platform of this build.",
		flags: func(fs *flag.FlagSet) func([]string, io.Writer, io.Writer) int {
			asJSON := fs.Bool("json", false, `one JSON object: {"version", "commit", "go", "os", "arch"}`)
			return func(_ []string, stdout, stderr io.Writer) int {
				b := currentBuild()
				if !*asJSON {
					fmt.Fprintf(stdout, "port-runner %s (commit %s, %s %s/%s)\n", b.Version, b.Commit, b.Go, b.OS, b.Arch)
					return exitOK
				}
				out, err := json.Marshal(b)
				if err != nil {
					fmt.Fprintf(stderr, "port-runner version: %v\n", err)
					return exitRuntime
				}
				fmt.Fprintf(stdout, "%s\n", out)
				return exitOK
			}
		},
	}
}

// build is what `port-runner version` reports.
type build struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Go      string `json:"go"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
}

func currentBuild() build {
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
	return build{Version: version, Commit: rev, Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
}

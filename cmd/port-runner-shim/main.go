// Command port-runner-shim is the exec shim every command of the agent runs under on Linux
// (package internal/shim). It is a separate binary so that its start-up, once per run, is
// the Go runtime's alone: it imports only syscall. The agent finds it next to its own
// executable.
package main

import (
	"syscall"

	"github.com/port-runner/port-runner/internal/shim"
)

func main() {
	args, err := shim.Args()
	if err != nil {
		_, _ = syscall.Write(2, []byte("port-runner-shim: argv: "+err.Error()+"\n"))
		syscall.Exit(127)
	}
	syscall.Exit(shim.Main(args))
}

package main

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"
)

// commandFlags is every subcommand with the flags it accepts: its help must name each one.
var commandFlags = map[string][]string{
	"run":      {"config"},
	"validate": {"config", "connect"},
	"try":      {"properties", "entity", "config"},
	"demo":     nil,
	"emulator": {"addr", "brokers", "org", "client-id", "client-secret", "budget", "budget-window", "kafka-username", "kafka-password", "secret-inputs"},
	"version":  {"json"},
	"help":     nil,
}

// `CMD -h`, `CMD --help` and `help CMD` all succeed and print the same usage of CMD, on stdout,
// naming each of its flags.
func TestCommandHelp(t *testing.T) {
	for name, flags := range commandFlags {
		t.Run(name, func(t *testing.T) {
			code, want, stderr := runCmd("help", name)
			if code != exitOK || stderr != "" {
				t.Fatalf("help %s: exit %d, stderr %q", name, code, stderr)
			}
			if !strings.Contains(want, "Usage: port-runner "+name) {
				t.Errorf("help %s does not give its usage:\n%s", name, want)
			}
			for _, f := range flags {
				if !strings.Contains(want, "-"+f+" ") && !strings.Contains(want, "-"+f+"\n") {
					t.Errorf("help %s does not name -%s:\n%s", name, f, want)
				}
			}
			if len(flags) == 0 && strings.Contains(want, "Flags:") {
				t.Errorf("help %s lists flags it has none of:\n%s", name, want)
			}
			for _, h := range []string{"-h", "--help", "-help"} {
				code, stdout, stderr := runCmd(name, h)
				if code != exitOK || stdout != want || stderr != "" {
					t.Errorf("%s %s: exit %d, stderr %q, stdout differs from help %s:\n%s", name, h, code, stderr, name, stdout)
				}
			}
		})
	}
}

// `help`, `-h` and `--help` print the global usage, which names every command; `help` of a
// command that does not exist is a usage error.
func TestGlobalHelp(t *testing.T) {
	_, want, _ := runCmd("help")
	for name := range commandFlags {
		if !strings.Contains(want, "port-runner "+name) {
			t.Errorf("the global usage does not name %s:\n%s", name, want)
		}
	}
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		code, stdout, stderr := runCmd(args...)
		if code != exitOK || stdout != want || stderr != "" {
			t.Errorf("%v: exit %d, stderr %q, stdout:\n%s", args, code, stderr, stdout)
		}
	}
	code, stdout, stderr := runCmd("help", "nosuch")
	if code != exitUsage || stdout != "" || !strings.Contains(stderr, `unknown command "nosuch"`) {
		t.Errorf("help nosuch: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestVersionJSON(t *testing.T) {
	code, stdout, stderr := runCmd("version", "--json")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	if got["version"] != version || got["commit"] == "" || got["go"] != runtime.Version() ||
		got["os"] != runtime.GOOS || got["arch"] != runtime.GOARCH {
		t.Errorf("version --json = %v", got)
	}
	for _, args := range [][]string{{"version"}, {"--version"}, {"-v"}} {
		code, stdout, _ := runCmd(args...)
		if code != exitOK || !strings.HasPrefix(stdout, "port-runner "+version+" (commit ") {
			t.Errorf("%v: exit %d, stdout %q", args, code, stdout)
		}
	}
}

// Every argument a command does not use is refused, before the command does anything (the
// emulator's address cannot be listened on: were the argument accepted, it would exit 1).
func TestStrayArgumentsRefused(t *testing.T) {
	t.Setenv("EMULATOR_KAFKA_PASSWORD", "")
	path := writeConfig(t, nil)
	const noListen = "127.0.0.1:-1"
	for _, tc := range []struct {
		args []string
		want string // in stderr
	}{
		{[]string{"version", "extra"}, `unexpected argument "extra"`},
		{[]string{"version", "--bogus"}, "-bogus"},
		{[]string{"version", "--", "--json"}, `unexpected argument "--json"`},
		{[]string{"--version", "extra"}, `unexpected argument "extra"`},
		{[]string{"demo", "extra"}, `unexpected argument "extra"`},
		{[]string{"demo", "--bogus"}, "-bogus"},
		{[]string{"run", "--config", path, "extra"}, `unexpected argument "extra"`},
		{[]string{"validate", "extra", "--config", path}, `unexpected argument "extra"`},
		{[]string{"try", "create_microservice", "extra"}, `unexpected argument "extra"`},
		{[]string{"try", "create_microservice", "--bogus"}, "-bogus"},
		{[]string{"try"}, "ACTION is required"},
		{[]string{"try", "--properties", "[1]", "create_microservice"}, "--properties must be a JSON object"}, // flags may come first
		{[]string{"help", "run", "extra"}, `unexpected argument "extra"`},
		{[]string{"help", "--bogus"}, "-bogus"},
		{[]string{"emulator", "--addr", noListen, "extra"}, `unexpected argument "extra"`},
		{[]string{"emulator", "--addr", noListen, "--bogus"}, "-bogus"},
		{[]string{"emulator", "--addr", noListen, "--brokers", "127.0.0.1:1", "--kafka-username", "u"}, "--kafka-password"},
		{[]string{"emulator", "--addr", noListen, "--kafka-username", "u", "--kafka-password", "p"}, "--brokers"},
		{[]string{"emulator", "--addr", noListen, "--brokers", "127.0.0.1:1", "--kafka-password", "p"}, "--kafka-username"},
		{[]string{"emulator", "--addr", noListen, "--budget-window", "10s"}, "--budget"},
		{[]string{"emulator", "--addr", noListen, "--budget", "-1"}, "--budget"},
		{[]string{"emulator", "--addr", noListen, "--budget", "5", "--budget-window", "1500ms"}, "whole seconds"},
		{[]string{"emulator", "--addr", noListen, "--budget", "5", "--budget-window", "0s"}, "whole seconds"},
	} {
		code, stdout, stderr := runCmd(tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, want 2 and stderr naming %q; stdout %q, stderr %q", tc.args, code, tc.want, stdout, stderr)
		}
	}
}

// The emulator's secrets may come from the environment; its help never shows them.
func TestEmulatorHelpHidesSecrets(t *testing.T) {
	t.Setenv("PORT_CLIENT_SECRET", "client-secret-from-env-1234")
	t.Setenv("EMULATOR_KAFKA_PASSWORD", "kafka-password-from-env-5678")
	for _, args := range [][]string{{"emulator", "-h"}, {"help", "emulator"}, {"emulator", "--bogus"}} {
		_, stdout, stderr := runCmd(args...)
		for _, secret := range []string{"client-secret-from-env-1234", "kafka-password-from-env-5678"} {
			if strings.Contains(stdout+stderr, secret) {
				t.Errorf("%v shows %s:\n%s%s", args, secret, stdout, stderr)
			}
		}
	}
}

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/port-runner/port-runner/internal/shim"
)

// TestMain lets the test binary serve as the exec shim, as the agent's binary does when
// port-runner-shim is not beside it: `try` and `demo` run in-process here, under the shim.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == shim.Command {
		os.Exit(shim.Main(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// writeConfig writes a config whose only action runs an executable script created in a temp
// dir; edit, when set, rewrites the YAML text first.
func writeConfig(t *testing.T, edit func(yml, dir string) string) string {
	t.Helper()
	t.Setenv("PORT_CLIENT_ID", "cid")
	t.Setenv("PORT_CLIENT_SECRET", "csecret")
	t.Setenv("PORT_ORG_ID", "org_test")
	t.Setenv("KAFKA_USERNAME", "kuser")
	t.Setenv("KAFKA_PASSWORD", "kpass")
	t.Setenv("PORT_RUNNER_CONFIG", "")
	dir := t.TempDir()
	script := filepath.Join(dir, "create-service.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"creating $SERVICE_NAME\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	yml := `port:
  clientID: ${PORT_CLIENT_ID}
  clientSecret: ${PORT_CLIENT_SECRET}
  orgID: ${PORT_ORG_ID}
kafka:
  brokers: ["localhost:9092"]
  group: ${PORT_ORG_ID}.runner
  sasl: {mechanism: SCRAM-SHA-512, username: ${KAFKA_USERNAME}, password: ${KAFKA_PASSWORD}}
actions:
  create_microservice:
    command: ["` + script + `"]
    env:
      SERVICE_NAME: .properties.name
      REGION: .properties.region
    timeout: 10m
`
	if edit != nil {
		yml = edit(yml, dir)
	}
	path := filepath.Join(dir, "port-runner.yaml")
	if err := os.WriteFile(path, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func runCmd(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestValidateOK(t *testing.T) {
	path := writeConfig(t, nil)
	code, stdout, stderr := runCmd("validate", "--config", path)
	if code != exitOK {
		t.Fatalf("exit %d, want 0; stderr:\n%s", code, stderr)
	}
	for _, want := range []string{"config ok", "create_microservice", "org_test.runs", "org_test.runner", "session timeout 15s (kafka.sessionTimeout), fence 10s", "acts on its runs for 2m10s", "others decide them 2m30s after it left"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout %q does not contain %q", stdout, want)
		}
	}
}

func TestValidateConfigFromEnv(t *testing.T) {
	path := writeConfig(t, nil)
	t.Setenv("PORT_RUNNER_CONFIG", path)
	if code, stdout, stderr := runCmd("validate"); code != exitOK || !strings.Contains(stdout, "config ok") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestValidateBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(yml, dir string) string
		want []string // each must appear in stderr
	}{
		{"unknown key", func(y, _ string) string {
			return strings.Replace(y, "    timeout: 10m\n", "    timeout: 10m\n    retries: 3\n", 1)
		}, []string{"actions.create_microservice.retries", "unknown key"}},
		{"unknown top-level key", func(y, _ string) string { return y + "extra: true\n" }, []string{"extra: unknown key"}},
		{"bad jq in action env", func(y, _ string) string {
			return strings.Replace(y, "REGION: .properties.region", `REGION: ".properties.region | ("`, 1)
		}, []string{"actions.create_microservice.env.REGION", "jq"}},
		{"missing command", func(y, dir string) string {
			return strings.Replace(y, filepath.Join(dir, "create-service.sh"), filepath.Join(dir, "does-not-exist.sh"), 1)
		}, []string{"actions.create_microservice.command", "does-not-exist.sh"}},
		{"relative missing command", func(y, dir string) string {
			return strings.Replace(y, filepath.Join(dir, "create-service.sh"), "./no/such/script.sh", 1)
		}, []string{"actions.create_microservice.command"}},
		{"missing secret", func(y, _ string) string {
			return strings.Replace(y, "${PORT_CLIENT_SECRET}", "${UNSET_SECRET_FOR_TEST}", 1)
		}, []string{"port.clientSecret"}},
		{"bad duration", func(y, _ string) string { return strings.Replace(y, "timeout: 10m", "timeout: ten", 1) }, []string{"line 15", `"ten"`}},
		{"bad yaml", func(y, _ string) string { return y + "  : [\n" }, []string{"parse YAML"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, tc.edit)
			code, stdout, stderr := runCmd("validate", "--config", path)
			if code != exitUsage {
				t.Fatalf("exit %d, want 2; stdout %q stderr %q", code, stdout, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not name %q:\n%s", w, stderr)
				}
			}
			if strings.Contains(stdout, "config ok") {
				t.Errorf("stdout says ok: %q", stdout)
			}
		})
	}
}

func TestValidateUsage(t *testing.T) {
	t.Setenv("PORT_RUNNER_CONFIG", "")
	path := writeConfig(t, nil)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no config", []string{"validate"}, "--config"},
		{"missing file", []string{"validate", "--config", filepath.Join(t.TempDir(), "nope.yaml")}, "nope.yaml"},
		{"unknown flag", []string{"validate", "--conf", path}, "conf"},
		{"positional file", []string{"validate", path}, "unexpected argument"},
		{"extra argument", []string{"validate", "--config", path, "extra"}, "unexpected argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCmd(tc.args...)
			if code != exitUsage {
				t.Fatalf("exit %d, want 2; stderr %q", code, stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q does not contain %q", stderr, tc.want)
			}
		})
	}
}

func TestRunUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(nil, &out, &errb); code != exitUsage {
		t.Errorf("run(nil) = %d, want 2", code)
	}
	if !strings.Contains(errb.String(), "Usage") {
		t.Errorf("run(nil) stderr = %q, want the usage", errb.String())
	}

	code, _, stderr := runCmd("frobnicate")
	if code != exitUsage || !strings.Contains(stderr, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, stderr %q", code, stderr)
	}

	code, stdout, _ := runCmd("version")
	if code != exitOK || !strings.Contains(stdout, "port-runner") {
		t.Errorf("version: exit %d, stdout %q", code, stdout)
	}

	code, stdout, _ = runCmd("help")
	if code != exitOK || !strings.Contains(stdout, "validate --config FILE") {
		t.Errorf("help: exit %d, stdout %q", code, stdout)
	}
}

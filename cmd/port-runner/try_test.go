package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The README's edit-run loop on the shipped example config: no Kafka, no credentials.
func TestTryShippedExample(t *testing.T) {
	for _, k := range []string{"PORT_RUNNER_CONFIG", "PORT_CLIENT_ID", "PORT_CLIENT_SECRET", "PORT_ORG_ID", "KAFKA_BROKERS", "KAFKA_GROUP"} {
		t.Setenv(k, "")
	}
	code, stdout, stderr := runCmd("try", "create_microservice", "--properties", `{"name":"x","region":"eu-west-1"}`)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"SERVICE_NAME=x", "REGION=eu-west-1", "PORT_API_TOKEN=***", // the child's env, masked
		`"region": "eu-west-1"`,                // the run file
		"Creating microservice x in eu-west-1", // the log as Port shows it
		"Status: SUCCESS · Created x",
		`PATCH /v1/actions/runs/`, `"link":["https://git.example.com/x"]`, // every PATCH (labels may coalesce)
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	code, stdout, _ = runCmd("try", "deploy_microservice", "--entity", "my-svc", "--properties", `{"environment":"moon"}`)
	if code != exitRuntime || !strings.Contains(stdout, "Status: FAILURE · exit code 3") || !strings.Contains(stdout, "DAY-2 on my-svc") {
		t.Fatalf("failing run: exit %d\n%s", code, stdout)
	}
	// An action with a workflowNode is tried as the node run it serves, with its output.
	code, stdout, _ = runCmd("try", "build_image", "--properties", `{"service":"billing","version":"2"}`)
	if code != exitOK || !strings.Contains(stdout, "Status: COMPLETED · SUCCESS") ||
		!strings.Contains(stdout, `Output: {"digest":"sha256:4f1c0a9e","image":"registry.example.com/billing:2"`) ||
		!strings.Contains(stdout, "PATCH /v1/workflows/nodes/runs/wfnr_") {
		t.Fatalf("node run: exit %d\n%s", code, stdout)
	}
	if code, _, _ := runCmd("try", "create_microservice", "--properties", "[1]"); code != exitUsage {
		t.Fatalf("bad --properties: exit %d", code)
	}
}

// try exits 2 where its ACTION or its config is wrong, as every command does for bad usage
// or a bad config (README "Running the agent"): 1 stays the run's FAILURE, so a script
// calling try can tell a failing action from a mistyped call.
func TestTryBadActionOrConfigIsUsage(t *testing.T) {
	t.Setenv("PORT_RUNNER_CONFIG", "")
	if code, _, stderr := runCmd("try", "no_such_action"); code != exitUsage || !strings.Contains(stderr, `"no_such_action" is not in the config`) {
		t.Errorf("unknown action: exit %d, %s", code, stderr)
	}
	unknownKey := writeConfig(t, func(yml, _ string) string { return yml + "    bogus: 1\n" })
	missing := filepath.Join(t.TempDir(), "none.yaml")
	badJQ := writeConfig(t, func(yml, _ string) string {
		return strings.Replace(yml, "SERVICE_NAME: .properties.name", "SERVICE_NAME: .properties.name |", 1)
	})
	for name, path := range map[string]string{"unknown key": unknownKey, "no such file": missing, "bad jq": badJQ} {
		if code, stdout, stderr := runCmd("try", "create_microservice", "--config", path); code != exitUsage || stderr == "" {
			t.Errorf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", name, code, exitUsage, stdout, stderr)
		}
	}
}

// A secret input reaches the command decrypted and is masked in everything try prints.
func TestTrySecretInput(t *testing.T) {
	path := writeConfig(t, func(yml, dir string) string {
		return strings.Replace(yml, "    timeout: 10m\n", "    timeout: 10m\n    secretInputs: [password]\n", 1) +
			"" // SERVICE_NAME comes from .properties.name; the script below echoes it
	})
	t.Setenv("PORT_CLIENT_SECRET", "a-client-secret-of-more-than-32-bytes!")
	code, stdout, stderr := runCmd("try", "create_microservice", "--config", path, "--properties", `{"name":"svc","password":"plain-Xy7"}`)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if strings.Contains(stdout, "plain-Xy7") || strings.Contains(stderr, "plain-Xy7") {
		t.Fatalf("the secret shows:\n%s\n%s", stdout, stderr)
	}
	if !strings.Contains(stdout, `"password": "***"`) || !strings.Contains(stdout, "creating svc") {
		t.Fatalf("output:\n%s", stdout)
	}
}

// try --polling takes the run as transport: polling does: Port holds it, the agent claims
// and acknowledges it, writes its lease, runs and closes it.
func TestTryPolling(t *testing.T) {
	code, stdout, stderr := runCmd("try", "create_microservice", "--polling", "--properties", `{"name":"x","region":"eu-west-1"}`)
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{"held for claims", "Status: SUCCESS", "acknowledged: true",
		"PATCH /v1/actions/runs/ack -> 200", `{"externalRunId":"port-runner lease `} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
}

// try --cancel-after ends the run in Port while its command runs, as a user does: the
// command is stopped, the run shows the user's FAILURE, and try says it was cancelled in Port.
func TestTryCancelAfter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	yml := `actions:
  slow: {command: [/bin/sh, -c, "echo working; sleep 300"]}
  node: {command: [/bin/sh, -c, "sleep 300"], workflowNode: {url: "https://port-runner.invalid/n"}}
`
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, stdout, stderr := runCmd("try", "slow", "--config", path, "--cancel-after", "500ms")
	if code != exitRuntime || !strings.Contains(stdout, "Status: FAILURE") || !strings.Contains(stderr, "run cancelled in Port") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	code, stdout, stderr = runCmd("try", "node", "--config", path, "--cancel-after", "500ms")
	if code != exitRuntime || !strings.Contains(stdout, "Status: COMPLETED · FAILED") || !strings.Contains(stderr, "run cancelled in Port") {
		t.Fatalf("node run: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if took := time.Since(start); took > 2*time.Minute {
		t.Fatalf("two cancelled runs took %s: the 300s commands were not stopped", took)
	}
	if code, _, _ := runCmd("try", "slow", "--config", path, "--cancel-after", "-1s"); code != exitUsage {
		t.Fatalf("negative --cancel-after: exit %d", code)
	}
}

// try --polling ends with the agent's error when the agent cannot start (here its runs
// directory is a file), rather than waiting for ever for Port to close a run nobody claims.
func TestTryPollingAgentThatCannotStart(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "a-file")
	path := filepath.Join(dir, "config.yaml")
	yml := "executor: {runsDir: " + notDir + "}\nactions:\n  quick: {command: [/bin/true]}\n"
	for p, b := range map[string]string{notDir: "", path: yml} {
		if err := os.WriteFile(p, []byte(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	type result struct {
		code           int
		stdout, stderr string
	}
	done := make(chan result, 1)
	go func() {
		code, stdout, stderr := runCmd("try", "quick", "--polling", "--config", path)
		done <- result{code, stdout, stderr}
	}()
	select {
	case r := <-done:
		if r.code != exitRuntime || !strings.Contains(r.stderr, "runsDir") {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("try --polling still waits two minutes after its agent failed to start")
	}
}

// try --polling takes a workflow node's run as transport: polling does too: Port holds the
// node run, the agent claims it on the workflows' claim route and acknowledges it.
func TestTryPollingNodeRun(t *testing.T) {
	code, stdout, stderr := runCmd("try", "build_image", "--polling", "--properties", `{"service":"billing","version":"2"}`)
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{"held for claims", "Status: COMPLETED · SUCCESS", "/v1/workflows/runs/claim-pending; acknowledged: true",
		"PATCH /v1/workflows/runs/ack -> 200"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
}

package agent

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/runmsg"
	"github.com/port-runner/port-runner/test/harness/vectors"
)

// TestSpecEnvFromTheRunContext: env expressions see the run context; a string is passed as
// is, null as "", anything else as JSON (README "What a command sees"); *_TOKEN values are masked.
func TestSpecEnvFromTheRunContext(t *testing.T) {
	run := unicodeRun(t)
	act, err := newAction("create_microservice", config.Action{
		Command: []string{"true"},
		Env: map[string]string{
			"NAME": ".properties.name", "REPLICAS": ".properties.replicas", "RATIO": ".properties.ratio",
			"TAGS": ".properties.tags", "NESTED": ".properties.nested", "NOTHING": ".properties.absent",
			"DEPLOY_TOKEN": `"s3cret-" + .properties.region`,
		},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec, secrets, err := act.spec(run)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"NAME": "ünïcødé-svc ✓", "REPLICAS": "3", "RATIO": "0.25", "TAGS": `["a","b"]`,
		"NESTED": `{"a":2,"z":1}`, "NOTHING": "", "DEPLOY_TOKEN": "s3cret-eu-west-1",
	}
	for k, v := range want {
		if spec.Env[k] != v {
			t.Errorf("env %s = %q, want %q", k, spec.Env[k], v)
		}
	}
	if len(secrets) != 1 || secrets[0] != "s3cret-eu-west-1" {
		t.Errorf("secrets %q, want the _TOKEN value", secrets)
	}
	if spec.RunID != "r_v2KafkaExample01" || len(spec.RunFile) == 0 {
		t.Errorf("spec %+v", spec)
	}
}

// BenchmarkSpecNoEnv is spec for an action without env expressions (the common /bin/true
// of the throughput benchmark): no jq, so no timer for it.
func BenchmarkSpecNoEnv(b *testing.B) {
	run := unicodeRun(b)
	act, err := newAction("create_microservice", config.Action{Command: []string{"true"}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := act.spec(run); err != nil {
			b.Fatal(err)
		}
	}
}

// unicodeRun is the run of the signed vector v2-kafka-unicode.
func unicodeRun(t testing.TB) runmsg.Run {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(vectors.Dir(t), "v2-kafka-unicode.signed.json"))
	if err != nil {
		t.Fatal(err)
	}
	dec, err := runmsg.NewDecoder(runmsg.Options{})
	if err != nil {
		t.Fatal(err)
	}
	run, err := dec.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

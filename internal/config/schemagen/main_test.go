package main

import (
	"bytes"
	"os"
	"testing"
)

const chartSchema = "../../../charts/port-runner/values.schema.json"

// The committed chart schema is exactly what the generator makes of it: the config part
// never drifts from the agent's config type.
func TestChartSchemaIsGenerated(t *testing.T) {
	committed, err := os.ReadFile(chartSchema)
	if err != nil {
		t.Fatal(err)
	}
	want, err := generate(committed)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(committed, want) {
		t.Errorf("%s is not the generator's output: run `go run ./internal/config/schemagen` from the repository root", chartSchema)
	}
}

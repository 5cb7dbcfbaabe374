// Command schemagen writes the agent's config schema (config.JSONSchema) into the Helm
// chart's values.schema.json as its "config" property, so the chart validates `config:`
// against the agent's own structure. The rest of the file is the chart's, edited by hand;
// keys come out sorted. From the repository root:
//
//	go run ./internal/config/schemagen
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/port-runner/port-runner/internal/config"
)

func main() {
	path := flag.String("file", "charts/port-runner/values.schema.json", "the chart's values schema")
	flag.Parse()
	if err := rewrite(*path); err != nil {
		fmt.Fprintln(os.Stderr, "schemagen:", err)
		os.Exit(1)
	}
}

func rewrite(path string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := generate(old)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, out, 0o644)
}

// generate returns the schema file with its config property replaced by the agent's schema.
func generate(existing []byte) ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(existing, &doc); err != nil {
		return nil, err
	}
	props, ok := doc["properties"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("no top-level properties object")
	}
	cfg := config.JSONSchema()
	cfg["description"] = "The agent's configuration (README \"Configuration\"), rendered into the ConfigMap as is. Generated from the config package by go run ./internal/config/schemagen: do not edit here."
	props["config"] = cfg
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

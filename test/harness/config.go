package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/runmsg"
)

// base is the config every agent of an Env starts from: the emulator's credentials and a
// budget well above what the tests spend, the Env's topic and group from the earliest offset,
// and the metrics server on a loopback port of its own.
func (e *Env) base() map[string]any {
	return map[string]any{
		"port": map[string]any{"baseURL": e.PortURL(), "clientID": ClientID, "clientSecret": e.ClientSecret,
			"orgID": OrgID, "requestsPerSecond": 200},
		"kafka":    map[string]any{"brokers": e.Broker.Brokers, "topic": e.Topic, "group": e.Group, "startOffset": "earliest"},
		"executor": map[string]any{"maxConcurrent": 4, "shutdownTimeout": "10s"},
		"logs":     map[string]any{"flushInterval": "200ms"},
		"metrics":  map[string]any{"addr": "127.0.0.1:0"},
	}
}

// ConfigYAML is an agent's config file for the Env: the base (see Config) with overlay, a
// YAML document, on top. A mapping in the overlay is merged key by key into the base's; any
// other value replaces the base's, and null removes it (kafka: {brokers: null} leaves the
// brokers to Port's credentials).
func (e *Env) ConfigYAML(t testing.TB, overlay string) string {
	t.Helper()
	var top map[string]any
	if err := yaml.Unmarshal([]byte(overlay), &top); err != nil {
		t.Fatalf("harness: config overlay: %v\n%s", err, overlay)
	}
	b, err := yaml.Marshal(merge(e.base(), top))
	if err != nil {
		t.Fatalf("harness: config: %v", err)
	}
	return string(b)
}

// Config is the agent's config, parsed and validated as `port-runner validate` does (but for
// the commands, which need not exist yet): Port's emulator with its credentials, the Env's
// topic and group read from the earliest offset, executor.maxConcurrent 4, shutdownTimeout
// 10s, logs.flushInterval 200ms, metrics on 127.0.0.1:0; overlay changes any of it and adds
// the actions (see ConfigYAML).
func (e *Env) Config(t testing.TB, overlay string) *config.Config {
	t.Helper()
	y := e.ConfigYAML(t, overlay)
	cfg, err := config.Parse([]byte(y), func(string) (string, bool) { return "", false })
	if err == nil {
		err = cfg.Validate(runmsg.CompileSelector, func(p string) (string, error) { return p, nil })
	}
	if err != nil {
		t.Fatalf("harness: config: %v\n%s", err, y)
	}
	return cfg
}

// ConfigFile writes ConfigYAML into dir/config.yaml and returns its path, for a process.
func (e *Env) ConfigFile(t testing.TB, dir, overlay string) string {
	t.Helper()
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(e.ConfigYAML(t, overlay)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// merge puts over on top of base (see ConfigYAML) and returns base.
func merge(base, over map[string]any) map[string]any {
	for k, v := range over {
		sub, isMap := v.(map[string]any)
		baseSub, baseIsMap := base[k].(map[string]any)
		switch {
		case v == nil:
			delete(base, k)
		case isMap && baseIsMap:
			base[k] = merge(baseSub, sub)
		default:
			base[k] = v
		}
	}
	return base
}

// Actions is the overlay of a config's actions: section, from the lines under it.
func Actions(lines string) string { return fmt.Sprintf("actions:\n%s", lines) }

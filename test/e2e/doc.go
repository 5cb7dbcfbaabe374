// Package e2e holds the end-to-end tests of the agent: each runs the real agent (assembled
// in-process from a config, as cmd/port-runner does) against the broker fixture and Port's
// emulator over HTTP, with real commands, all set up by test/harness.
//
//   - What Port sends besides plain action runs (README "Workflow node runs", "Secret
//     inputs", "Synchronous actions", "Pointing it at Port"): features_test.go.
//   - Operations (README "Observability"): lag, saturation, /metrics and /status after real
//     runs, scraped from the agent's metrics server, and README's metrics table against
//     them: lag_test.go, metrics_test.go, readme_test.go.
//   - How replicas share Port's API budget (README "Port's API budget"): budget_test.go, and
//     BenchmarkRequestsPerRun. These take tens of seconds each by design (the budget sets
//     their pace) and run on the in-process broker only.
//
// The agent's own behaviour (delivery, redelivery, closing, lookups, isolation of runs) is
// tested beside it, in internal/agent; the built binary in test/process.
package e2e

// Package e2e holds the end-to-end tests of the agent: each runs the real agent (assembled
// in-process from a config, as cmd/port-runner does) against the broker fixture and Port's
// emulator over HTTP, with real commands, all set up by test/harness.
//
//   - What Port sends besides plain action runs (README "Workflow node runs", "Secret
//     inputs", "Synchronous actions", "Pointing it at Port"): features_test.go; client-side
//     secret inputs: clientside_test.go.
//   - Every shape in which Port hands a run to an agent, from Port's own code (README "Which
//     invocation method"): shapes_test.go.
//   - Port stays in charge (README "Cancelled in Port", "Routing runs between deployments"):
//     a run ended in Port, or a node run of a workflow cancelled with force, stops its
//     command: cancel_test.go; two deployments route one action by when, and unmatched node
//     runs: routing_test.go.
//   - Operations (README "Observability"): lag, saturation, /metrics and /status after real
//     runs, scraped from the agent's metrics server, and README's metrics table against
//     them: lag_test.go, metrics_test.go, readme_test.go; /status loaded in a real headless
//     Chromium (Debian's; skipped without it, a failure under CI=true, .ci/run installs it):
//     statuspage_test.go.
//   - How replicas share Port's API budget (README "Port's API budget"), and what the status
//     checks of long runs cost: budget_test.go, and BenchmarkRequestsPerRun. These take tens
//     of seconds each by design (the budget sets their pace) and run on the in-process
//     broker only.
//
// The agent's own behaviour (delivery, redelivery, closing, lookups, isolation of runs) is
// tested beside it, in internal/agent; the built binary in test/process.
package e2e

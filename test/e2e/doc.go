// Package e2e holds end-to-end tests of what Port sends an agent besides plain action runs
// (README "Workflow node runs", "Secret inputs", "Synchronous actions", "Pointing it at
// Port"): workflow node runs, secret inputs, synchronous responses and Kafka credentials
// from Port. Each wires the real agent to the kafkatest broker fixture and the Port
// emulator over HTTP, with real commands. They live outside ./agent/ because CI runs that
// package three times.
package e2e

// Package release checks a release as scripts/release builds it (README "Releases"):
// scripts/test runs `scripts/release --rehearse DIR` (the tree, tagged, released from the
// tag), then these tests with PORT_RUNNER_RELEASE_DIR=DIR, and PORT_RUNNER_ACTIONLINT set to
// the pinned actionlint for the workflow's lint; without them they skip (go test ./... runs
// before the release is built).
package release

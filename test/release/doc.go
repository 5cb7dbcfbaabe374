// Package release checks what scripts/release built (README "Releases"): scripts/test runs
// `scripts/release --snapshot`, then these tests with PORT_RUNNER_RELEASE_DIR set to the
// repository; without it they skip (go test ./... runs before the release is built).
package release

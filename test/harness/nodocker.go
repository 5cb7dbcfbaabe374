//go:build !docker

package harness

import "testing"

// newContainer is the default-build stub: the testcontainers-go branch lives
// in docker.go behind the "docker" build tag so that the default build does
// not depend on testcontainers-go.
func newContainer(t testing.TB) *Broker {
	t.Helper()
	t.Skip("PORT_RUNNER_TEST_DOCKER=1 needs -tags docker")
	return nil
}

// Package harness is the one kit every integration test of port-runner sets up with, as GitLab
// Runner's common/buildtest is for its builds: the suites differ in what they assert, not in
// how they start Kafka, Port and the agent.
//
//   - [NewBroker]: a Kafka broker: in-process kfake, the broker KAFKA_BROKERS names, or a
//     container (PORT_RUNNER_TEST_DOCKER=1 with -tags docker).
//   - [New]: an [Env]: a topic and a consumer group of the test's own on a broker, and Port's
//     API emulator served on loopback, producing to that topic the runs it creates.
//   - [Env.Config], [Env.ConfigYAML]: an agent's config for the env: a base, and the YAML the
//     test gives on top (its actions, and whatever it changes).
//   - [Env.Start]: the agent assembled from a config (internal/agent, as cmd/port-runner
//     assembles it) and run in-process until the test ends.
//   - [Binary], [BinaryWithShim], [Processes]: ./cmd/port-runner built once per test binary
//     (with its exec shim beside it: the C one as the image ships it, or the Go one) and run
//     as processes.
//   - [Env.NewRun], [Env.ProduceRun], [Env.WaitClosed]: run messages signed as Port signs
//     them, and runs waited for in Port.
//   - [Scrape], [Gather], [Families]: an agent's metrics as Prometheus reads them.
//   - [NewKafkaProxy]: a proxy between an agent and the brokers that the test can cut (a
//     network partition of that agent alone) and restore.
//   - test/harness/vectors (the shared signed vectors and their secret) and
//     test/harness/bomb (decompression bombs written to a partition as they are): leaf
//     packages, for the unit tests of what the harness builds on too.
//
// scripts/test runs every package whose tests import this one again on a real Apache Kafka,
// over PLAINTEXT and over SASL_SSL.
package harness

// Package hostile tests, on Linux, hostile or broken input through the built agent, each a
// reproduction of a red-team finding: a decompression bomb under the chart's memory limit, a
// command that leaves a named pipe or a link where its response file goes, a command that
// calls the Port API routes the proxy never forwards. The agent runs as a separate process
// (as uid 65534 when the tests run as root), on kfake or the broker KAFKA_BROKERS names, with
// Port's emulator on loopback.
//
// Memory is limited with a cgroup v1 memory group the test creates under its own cgroup and
// removes after (root only); without one, the agent's peak RSS is measured instead.
package hostile

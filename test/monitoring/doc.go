// Package monitoring checks the shipped monitoring files against the agent: every
// Grafana dashboard query and every alert rule parses with Prometheus's own parsers, and
// every metric they name is one the agent's registry really gathers after real runs; every
// alert has unit tests in promtool's format (testdata/), where it fires and where it must
// not, evaluated with Prometheus's rule engine; and promtool's metrics lint (promlint) finds
// nothing in a scrape of the agent's metrics server. It is a module of its own so that
// github.com/prometheus/prometheus never enters the agent's dependencies (scripts/test runs
// it).
package monitoring

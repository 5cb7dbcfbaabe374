// Package ops holds the operations acceptance tests (lag, saturation, /metrics and
// /status after real runs): a real agent on the kafkatest broker and the Port emulator,
// scraped over HTTP. They take several seconds each, so they live outside the packages CI
// runs three times.
package ops

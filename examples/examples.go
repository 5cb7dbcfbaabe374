// Package examples ships the example config and scripts inside the binary, so
// `port-runner demo` runs anywhere with nothing else installed.
package examples

import "embed"

// FS holds config.yaml and scripts/.
//
//go:embed config.yaml scripts
var FS embed.FS

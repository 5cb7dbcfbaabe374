//go:build unix && !linux

package executor

import "os"

// confined is empty outside Linux: without the shim nothing is applied between fork and
// exec (process_other.go lists what this platform lacks).
type confined struct{}

func confine(*confined, Spec, prepared) error { return nil }
func (*confined) files() []*os.File           { return nil }
func (*confined) exceeded() string            { return "" }
func (*confined) watched() bool               { return false }
func (*confined) label(res Result) Result     { return res }
func (*confined) release()                    {}
func (*confined) inCell() bool                { return false }

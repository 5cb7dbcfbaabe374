//go:build !linux

package clock

import "time"

// origin is the process's start on Go's monotonic clock, which elsewhere is the best there is.
var origin = time.Now()

func boot() int64 { return int64(time.Since(origin)) }

// Package clock is the one clock leases and fences are measured on: monotonic, and going on
// while the machine is suspended (Linux CLOCK_BOOTTIME), so a frozen VM's pause counts as
// time that passed, as it does for the other members of the group.
package clock

import "time"

// Instant is a reading of the clock; only differences between two readings mean anything.
type Instant time.Duration

// Now reads the clock.
func Now() Instant { return Instant(boot()) }

// Since is how long ago i was.
func Since(i Instant) time.Duration { return time.Duration(Now() - i) }

// Add is i moved by d.
func (i Instant) Add(d time.Duration) Instant { return i + Instant(d) }

// Before reports whether i is earlier than j.
func (i Instant) Before(j Instant) bool { return i < j }

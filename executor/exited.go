//go:build unix

package executor

// pidfdHold is a pidfd held as a plain fd, as controlSocket: the one the kernel made with a
// process while nothing watches it (process.watching); the zero value: none.
type pidfdHold struct {
	fd  int
	set bool
}

// closed says whether ch is closed, without waiting.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

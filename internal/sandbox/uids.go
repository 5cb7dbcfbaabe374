package sandbox

import (
	"fmt"
	"sync"
)

// UIDs hands each run a uid of its own from executor.runAs's range, the gid equal to it. A
// uid goes back once its run has ended and nothing of it is left; it is handed out again
// last (round robin), so a uid's leftovers never meet the next run of it for long.
type UIDs struct {
	mu     sync.Mutex
	lo, hi int
	next   int
	used   map[int]bool
}

// NewUIDs is the pool lo..hi (inclusive).
func NewUIDs(lo, hi int) (*UIDs, error) {
	if lo < 1 || hi < lo {
		return nil, fmt.Errorf("runAs: %d-%d is not a range of non-root uids", lo, hi)
	}
	return &UIDs{lo: lo, hi: hi, next: lo, used: map[int]bool{}}, nil
}

// Take reserves a uid; false when every one is in use.
func (u *UIDs) Take() (int, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for i := 0; i <= u.hi-u.lo; i++ {
		uid := u.next
		if u.next++; u.next > u.hi {
			u.next = u.lo
		}
		if !u.used[uid] {
			u.used[uid] = true
			return uid, true
		}
	}
	return 0, false
}

// Give returns a uid Take gave.
func (u *UIDs) Give(uid int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.used, uid)
}

// Range is lo and hi.
func (u *UIDs) Range() (lo, hi int) { return u.lo, u.hi }

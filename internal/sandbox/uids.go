package sandbox

import (
	"fmt"
	"os"
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

// NewUIDs is the pool lo..hi (inclusive). It refuses root and the agent's own uid and gid:
// a run of either would reach the agent and every other run.
func NewUIDs(lo, hi int) (*UIDs, error) {
	if lo < 1 || hi < lo {
		return nil, fmt.Errorf("runAs: %d-%d is not a range of non-root uids", lo, hi)
	}
	if own := OwnIDIn(lo, hi); own >= 0 {
		return nil, fmt.Errorf("runAs: %d-%d holds %d, the agent's own uid or gid", lo, hi, own)
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

// OwnIDIn is the agent's uid or gid (real or effective) that lies in lo..hi, -1 when none.
func OwnIDIn(lo, hi int) int {
	for _, id := range []int{os.Getuid(), os.Geteuid(), os.Getgid(), os.Getegid()} {
		if id >= lo && id <= hi {
			return id
		}
	}
	return -1
}

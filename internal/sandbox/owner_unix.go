//go:build unix

package sandbox

import (
	"os"
	"syscall"
)

// ownerOf is fi's owner uid.
func ownerOf(fi os.FileInfo) (uint32, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return st.Uid, true
}

//go:build unix && !linux

package executor

import (
	"io"
	"os"
)

// emptyDir reports whether dir holds no entry (false when it cannot tell).
func emptyDir(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	return len(names) == 0 && err == io.EOF
}

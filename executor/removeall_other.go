//go:build unix && !linux

package executor

import "os"

// removeAll removes dir with what is in it (os.RemoveAll).
func removeAll(dir string) error { return os.RemoveAll(dir) }

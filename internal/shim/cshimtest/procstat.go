//go:build cgo && linux

package cshimtest

/*
#include <stddef.h>
#include "../../../cmd/port-runner-shim/c/procstat.h"
*/
import "C"

import "unsafe"

// StatPPid is the C shim's stat_ppid on b.
func StatPPid(b []byte) int {
	if len(b) == 0 {
		return int(C.stat_ppid(nil, 0))
	}
	return int(C.stat_ppid((*C.char)(unsafe.Pointer(&b[0])), C.size_t(len(b))))
}

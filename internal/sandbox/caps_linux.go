//go:build linux

package sandbox

import (
	"bufio"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// runAsCaps are what a uid per run needs: the shim switches ids (SETUID, SETGID), the run's
// directory becomes its uid's (CHOWN), the agent reads and removes what the run wrote
// (DAC_OVERRIDE, and FOWNER in sticky directories like /tmp) and the shim kills what the run
// left (KILL).
var runAsCaps = []struct {
	name string
	bit  int
}{
	{"CAP_SETUID", unix.CAP_SETUID}, {"CAP_SETGID", unix.CAP_SETGID}, {"CAP_CHOWN", unix.CAP_CHOWN},
	{"CAP_DAC_OVERRIDE", unix.CAP_DAC_OVERRIDE}, {"CAP_FOWNER", unix.CAP_FOWNER}, {"CAP_KILL", unix.CAP_KILL},
}

// RunAsMissing names the capabilities this process lacks for executor.runAs: effective
// here, and kept by the shim it execs (root keeps its bounding set; another uid only its
// ambient capabilities). Empty when it has them all.
func RunAsMissing() []string {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return []string{"capget: " + err.Error()}
	}
	root := os.Geteuid() == 0
	var missing []string
	for _, c := range runAsCaps {
		eff := data[c.bit/32].Effective&(1<<(uint(c.bit)%32)) != 0
		kept := root
		if !root {
			amb, err := unix.PrctlRetInt(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_IS_SET, uintptr(c.bit), 0, 0)
			kept = err == nil && amb == 1
		}
		if !eff || !kept {
			missing = append(missing, c.name)
		}
	}
	return missing
}

// UIDsMapped reports whether every uid of lo..hi exists in this user namespace
// (/proc/self/uid_map); an unreadable map counts as the whole range.
func UIDsMapped(lo, hi int) bool {
	f, err := os.Open("/proc/self/uid_map")
	if err != nil {
		return true
	}
	defer f.Close()
	return uidRangeMapped(bufio.NewScanner(f), lo, hi)
}

// uidRangeMapped reads uid_map lines "INSIDE OUTSIDE COUNT".
func uidRangeMapped(sc *bufio.Scanner, lo, hi int) bool {
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			continue
		}
		inside, err1 := strconv.ParseInt(f[0], 10, 64)
		count, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 == nil && err2 == nil && int64(lo) >= inside && int64(hi) < inside+count {
			return true
		}
	}
	return false
}

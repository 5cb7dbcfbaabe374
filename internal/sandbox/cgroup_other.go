//go:build !linux

package sandbox

import "errors"

// Cgroups is Linux-only.
type Cgroups struct{}

// DetectCgroups finds none outside Linux.
func DetectCgroups() (*Cgroups, error) { return nil, errors.New("cgroups are Linux-only") }

// OwnV1 finds none outside Linux.
func OwnV1() (pids, memory string) { return "", "" }

// CgroupsUnder is Linux-only.
func CgroupsUnder(pids, memory string) *Cgroups { return &Cgroups{} }

func (*Cgroups) Protections() []string { return nil }
func (*Cgroups) String() string        { return "" }

// RunCgroup is Linux-only.
type RunCgroup struct{ Procs []string }

func (*Cgroups) NewRun(string, int, int64) (*RunCgroup, error) {
	return nil, errors.New("cgroups are Linux-only")
}
func (*RunCgroup) Exceeded() string      { return "" }
func (*RunCgroup) CountsProcesses() bool { return false }
func (*RunCgroup) Remove()               {}

// MemoryMax finds no cgroup limit outside Linux.
func MemoryMax() int64 { return 0 }

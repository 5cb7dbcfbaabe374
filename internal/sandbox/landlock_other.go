//go:build !linux

package sandbox

import "errors"

// LandlockABI is 0 outside Linux.
func LandlockABI() int { return 0 }

// Sandbox is Linux-only.
type Sandbox struct{}

// New fails outside Linux: Landlock is a Linux security module.
func New(*Layout) (*Sandbox, error) { return nil, errors.New("Landlock is Linux-only") }

func (*Sandbox) Layout() *Layout       { return nil }
func (*Sandbox) Protections() []string { return nil }
func (*Sandbox) ABI() int              { return 0 }
func (*Sandbox) RulesetFD(_, _ []string) (int, uint32, error) {
	return -1, 0, errors.New("Landlock is Linux-only")
}

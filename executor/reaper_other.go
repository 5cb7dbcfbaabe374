//go:build !linux

package executor

import (
	"context"
	"errors"
)

// Reaper is Linux-only (PR_SET_CHILD_SUBREAPER).
type Reaper struct{}

// NewReaper fails outside Linux.
func NewReaper(func(n int)) (*Reaper, error) {
	return nil, errors.New("a child subreaper is Linux-only")
}

func (*Reaper) Run(context.Context) {}

func (*Reaper) starting() (done func(pid int) (ended func(signaled bool))) {
	return func(int) func(bool) { return func(bool) {} }
}

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

func (*Reaper) starting() {}

func (*Reaper) register(int) reaperTicket { return reaperTicket{} }

// reaperTicket is a process started under the Reaper: none here.
type reaperTicket struct{}

func (reaperTicket) ended(bool) {}

package harness

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/port-runner/port-runner/internal/emulator"
)

// closeTimeout is how long WaitClosed waits for one run: far longer than any run of the
// suites takes, so only a run that is never closed reaches it.
const closeTimeout = 60 * time.Second

// Ended reports whether Port has the run's termination.
func Ended(r emulator.RunState) bool { return r.Status != "IN_PROGRESS" }

// WaitClosed waits until Port has the run's termination and returns the run.
func (e *Env) WaitClosed(t testing.TB, id string) emulator.RunState {
	t.Helper()
	return e.WaitAllClosed(t, []string{id}, closeTimeout)[0]
}

// WaitAllClosed waits until Port has the termination of every run, within timeout, and
// returns them in order.
func (e *Env) WaitAllClosed(t testing.TB, ids []string, timeout time.Duration) []emulator.RunState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	runs := make([]emulator.RunState, len(ids))
	for i, id := range ids {
		r, err := e.Emu.WaitRun(ctx, id, Ended)
		if err != nil {
			t.Fatalf("harness: %d of %d runs closed; run %s: %v", i, len(ids), id, err)
		}
		runs[i] = r
	}
	return runs
}

// ClosedCount is how many of the runs Port has the termination of.
func (e *Env) ClosedCount(ids []string) int {
	n := 0
	for _, id := range ids {
		if r, ok := e.Emu.Run(id); ok && Ended(r) {
			n++
		}
	}
	return n
}

// Uncommitted lists the partitions the group has not committed to their end (an empty
// partition needs no commit); nil when every one is.
func (e *Env) Uncommitted(t testing.TB) []string {
	t.Helper()
	var behind []string
	e.offsets(t, func(ends kadm.ListedOffsets, committed kadm.OffsetResponses) {
		ends.Each(func(end kadm.ListedOffset) {
			if end.Offset == 0 {
				return
			}
			c, ok := committed.Lookup(e.Topic, end.Partition)
			if !ok || c.Err != nil || c.At != end.Offset {
				behind = append(behind, fmt.Sprintf("partition %d committed %d (found %v), end %d", end.Partition, c.At, ok, end.Offset))
			}
		})
	})
	return behind
}

// offsets reads the topic's end offsets and the group's committed ones.
func (e *Env) offsets(t testing.TB, read func(ends kadm.ListedOffsets, committed kadm.OffsetResponses)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	adm := e.Broker.admin(t)
	defer adm.Close()
	ends, err := adm.ListEndOffsets(ctx, e.Topic)
	if err != nil {
		t.Fatalf("harness: end offsets of %s: %v", e.Topic, err)
	}
	committed, err := adm.FetchOffsets(ctx, e.Group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		committed, err = nil, nil // a group that never committed
	}
	if err != nil {
		t.Fatalf("harness: committed offsets of %s: %v", e.Group, err)
	}
	read(ends, committed)
}

// CommittedToEnd fails t unless the group has committed every partition to its end.
func (e *Env) CommittedToEnd(t testing.TB) {
	t.Helper()
	for _, p := range e.Uncommitted(t) {
		t.Errorf("not committed to the end: %s", p)
	}
}

// WaitCommittedToEnd waits until the group has committed every partition to its end (a
// stopped agent's last commit may still be on its way); at the deadline it fails t naming
// the partitions that are not.
func (e *Env) WaitCommittedToEnd(t testing.TB, timeout time.Duration) {
	t.Helper()
	var behind []string
	deadline := time.Now().Add(timeout)
	for behind = e.Uncommitted(t); len(behind) > 0 && time.Now().Before(deadline); behind = e.Uncommitted(t) {
		time.Sleep(100 * time.Millisecond) // polling the broker, not a stand-in for a state
	}
	for _, p := range behind {
		t.Errorf("not committed to the end after %s: %s", timeout, p)
	}
}

// CommittedOffset is the group's committed offset of a partition (-1: none).
func (e *Env) CommittedOffset(t testing.TB, partition int32) int64 {
	t.Helper()
	at := int64(-1)
	e.offsets(t, func(_ kadm.ListedOffsets, committed kadm.OffsetResponses) {
		if c, ok := committed.Lookup(e.Topic, partition); ok {
			at = c.At
		}
	})
	return at
}

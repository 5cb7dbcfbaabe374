package consumer

import (
	"errors"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/clock"
)

// TestAbsenceOutlivesAComeback: a member left out of the group's description once (its
// session expired: it was frozen, cut off) and listed again under the same id, as KIP-848
// keeps a fenced member's id, holds none of the runs it took before: others may have
// decided them a bound after it went. What it takes after its comeback it holds.
func TestAbsenceOutlivesAComeback(t *testing.T) {
	m := newMembers(time.Hour, time.Hour)
	m.observe(clock.Now(), []string{"a", "b"}, "a", nil)
	before := clock.Now()
	if err := m.held("a", before); err != nil {
		t.Fatalf("a listed member: %v", err)
	}
	m.observe(clock.Now(), []string{"b"}, "a", nil) // a's session expired
	m.observe(clock.Now(), []string{"a", "b"}, "a", nil)
	if err := m.held("a", before); !errors.Is(err, ErrNotOwned) {
		t.Fatalf("a run taken before the absence: %v, want ErrNotOwned", err)
	}
	if err := m.held("a", clock.Now()); err != nil {
		t.Fatalf("a run taken after the comeback: %v", err)
	}
	other := newMembers(time.Hour, time.Hour) // b's view of a lease a holds
	other.observe(clock.Now(), []string{"a", "b"}, "b", []string{"a"})
	other.observe(clock.Now(), []string{"b"}, "b", []string{"a"})
	other.observe(clock.Now(), []string{"a", "b"}, "b", []string{"a"})
	if !other.leaseEnded(Lease{Holder: "a", Bound: 0}) {
		t.Fatal("a lease whose holder went and came back does not end a bound after it went")
	}
	if other.leaseEnded(Lease{Holder: "a", Bound: time.Hour}) {
		t.Fatal("a lease ended before its bound")
	}
}

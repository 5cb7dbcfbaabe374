package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/port-runner/port-runner/internal/backoff"
	"github.com/port-runner/port-runner/internal/clock"
)

// Errors a ticket's Held and Stopped give (README "Delivery"). ErrFenced may pass (the
// membership is confirmed again); the others are for good.
var (
	// ErrNotOwned: the record's partition went to another member while this one did not hold
	// its run (lost, or a handover whose commit failed): the new owner decides the run, and
	// this member never acts on it again. A run not started must not start (Take returns it).
	ErrNotOwned = errors.New("partition reassigned to another agent")
	// ErrFenced: this member could not confirm its membership of the group for half the
	// fence: its runs' commands stop, and it acts on them again only once it is confirmed.
	ErrFenced = errors.New("lost contact with the Kafka group")
	// ErrLeaseEnded: the member left the group (a drain) longer ago than its leases last.
	ErrLeaseEnded = errors.New("the run's lease ended")
)

// Learned is what earlier holders of a record's partition left known about it: what a new
// holder learns (README "Delivery").
type Learned struct {
	Prior Prior
	Lease Lease // PriorLeased: who holds the run, and how long after leaving the group
	// Ended is closed once no earlier holder can act on the run any more: PriorStarted, the
	// fence after this member got the partition (its earlier owner lost it, and its
	// commands were dead by then); PriorLeased, the holder left the group longer than its
	// bound ago. Until then the run is another member's. nil for other priors.
	Ended <-chan struct{}
}

// Ticket is one record handed to the handler, and its run's lease as the group keeps it:
// the record's partition's commit metadata, and this member's confirmed membership.
type Ticket struct {
	Record *kgo.Record // its Value its own; its Key and Headers not kept (see detach)
	// Handover is done once this member has begun handing the record's partition over (a
	// revoke): a run not taken by then must not be taken here.
	Handover context.Context

	c       *Consumer
	pl      *partitionLedger
	learned Learned
	ended   chan struct{} // learned.Ended, closed by the membership watch
	stopped context.Context
	stop    context.CancelCauseFunc

	// guarded by c.runsMu:
	parked   bool          // its place in the pool is given back while it waits (Park)
	holder   string        // the member id under which this member took the run; "" before Take
	takenAt  clock.Instant // when Take returned
	taking   bool          // Take is recording the run's start: a handover leaves the ticket to it
	leased   bool          // its partition was handed over with the run leased to this member
	lasting  chan struct{} // closed once Lasts says more than 0 (Lasting)
	lasted   bool          // lasting is closed
	lost     error         // set once the run is not this member's any more, for good
	released bool
	acting   map[*context.CancelCauseFunc]struct{} // the live contexts of Acting
}

// Learned is what earlier holders left known about the record.
func (t *Ticket) Learned() Learned { return t.learned }

// Take makes "this member holds the run" durable in the group's committed metadata (its
// start mark), and returns once the broker has it: from then on, if this member dies, the
// next owner knows the command may have run, and at a handover the run is leased to it. It
// retries commit failures until ctx ends or the partition is gone.
func (t *Ticket) Take(ctx context.Context) error {
	t.setTaking(true)
	defer t.setTaking(false)
	member := t.c.memberID()
	m, err := t.markStarted(ctx, member)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		t.c.commitStart(ctx, m, time.Now().Add(10*time.Second))
		covered, owned := t.c.ledger.committedVersion(m)
		// A handover's commit answered failed may still lease the run to this member, as
		// read back (handOver): its start is then in what the group holds.
		covered = covered || t.isLeased()
		switch {
		case covered && member != "" && member == t.c.memberID():
			return t.hold(member)
		case !owned && t.isDecided():
			return ErrNotOwned
		}
		if backoff.Sleep(ctx, backoff.Policy{Base: 50 * time.Millisecond, Max: 2 * time.Second}.Delay(attempt, 0)) != nil {
			// The command will not run: a later commit must not say it may have.
			t.c.ledger.unmarkStarted(t.Record, m)
			rec := t.Record
			return fmt.Errorf("record start of %s/%d@%d: %w", rec.Topic, rec.Partition, rec.Offset, context.Cause(ctx))
		}
	}
}

// markStarted records the start in the ledger, waiting while the partition's metadata has
// no room for it (until ctx ends or the partition is handed over).
func (t *Ticket) markStarted(ctx context.Context, member string) (startMark, error) {
	lease := Lease{Holder: member, Bound: t.c.leaseBound()}
	for attempt := 0; ; attempt++ {
		m, err := t.c.ledger.markStarted(t.Record, t.pl, lease)
		if !errors.Is(err, errNoRoom) {
			return m, err
		}
		if attempt == 0 {
			t.c.log.Warn("run waits: its partition's commit metadata has no room for another start until a run of it ends",
				zap.String("topic", t.Record.Topic), zap.Int32("partition", t.Record.Partition), zap.Int64("offset", t.Record.Offset))
		}
		select {
		case <-ctx.Done():
			return startMark{}, context.Cause(ctx)
		case <-t.Handover.Done():
			return startMark{}, ErrNotOwned
		case <-t.c.ledger.changedC():
		case <-time.After(time.Second):
		}
	}
}

// hold records that member holds the run, unless the run was lost meanwhile.
func (t *Ticket) hold(member string) error {
	t.c.runsMu.Lock()
	defer t.c.runsMu.Unlock()
	if t.lost != nil {
		return t.lost
	}
	t.holder, t.takenAt = member, clock.Now()
	t.checkLasting()
	return nil
}

func (t *Ticket) setTaking(on bool) {
	t.c.runsMu.Lock()
	defer t.c.runsMu.Unlock()
	t.taking = on
}

// Held is nil while this member may act on the run: run its command, close it in Port. The
// group renews it: while the member's membership is confirmed (the fence), or, once it left
// the group, for its leases' bound. ErrFenced may pass; any other error is for good.
func (t *Ticket) Held() error {
	t.c.runsMu.Lock()
	holder, takenAt, lost := t.holder, t.takenAt, t.lost
	t.c.runsMu.Unlock()
	if lost != nil {
		return lost
	}
	if holder == "" {
		holder, takenAt = t.c.memberID(), clock.Now()
	}
	return t.c.members.held(holder, takenAt)
}

// Stopped is done once the run's command must stop here (cause: ErrNotOwned, ErrFenced,
// ErrLeaseEnded): the fence stops every run of a member that cannot confirm its membership.
func (t *Ticket) Stopped() context.Context { return t.stopped }

// Release ends the ticket: finished, the run is decided here (closed in Port, or skipped)
// and the partition's commit may pass it; otherwise it is left for the next holder.
func (t *Ticket) Release(finished bool) {
	t.c.runsMu.Lock()
	if t.released {
		t.c.runsMu.Unlock()
		return
	}
	t.released = true
	delete(t.c.runs, t)
	t.c.runsMu.Unlock()
	t.stop(nil)
	if !finished {
		t.c.ledger.abandon(t.Record, t.pl)
		return
	}
	if t.c.ledger.finish(t.Record, t.pl) {
		t.c.syncPause(topicPartition{t.Record.Topic, t.Record.Partition})
	}
}

// Park gives the ticket's place in the pool back for good: its run waits for another
// holder's lease, which may take hours, and the pool goes on polling and running other
// runs meanwhile; nor does it count against its partition's open runs (which pause its
// fetching). Parked tickets are bounded apart from the pool, by the started runs their
// partitions' metadata can say (README "Delivery").
func (t *Ticket) Park() {
	t.c.runsMu.Lock()
	was := t.parked
	t.parked = true
	t.c.runsMu.Unlock()
	if !was {
		t.c.opts.Slots.Release(1)
		if t.c.ledger.park(t.Record, t.pl) {
			t.c.syncPause(topicPartition{t.Record.Topic, t.Record.Partition})
		}
	}
}

func (t *Ticket) isParked() bool {
	t.c.runsMu.Lock()
	defer t.c.runsMu.Unlock()
	return t.parked
}

// Seen says whether run id was handled before on this partition (whoever owned it) or on
// another one before this member got its partitions, and whether what is known here would
// include a run whose message is from at (covered: otherwise only Port can tell).
func (t *Ticket) Seen(id string, at time.Time) (dup, covered bool) {
	return t.c.ledger.seen(t.pl, id, at)
}

// Handled records run id in the partition's history, which its commits carry.
func (t *Ticket) Handled(id string, at time.Time) { t.c.ledger.handled(t.pl, id, at) }

// newTicket registers the ticket of a polled record.
func (c *Consumer) newTicket(rec *kgo.Record, p polled) *Ticket {
	stopped, stop := context.WithCancelCause(context.Background())
	t := &Ticket{Record: rec, Handover: p.pl.handover, c: c, pl: p.pl, stopped: stopped, stop: stop,
		learned: Learned{Prior: p.prior, Lease: p.lease}, lasting: make(chan struct{})}
	if p.prior == PriorStarted || p.prior == PriorLeased {
		t.ended = make(chan struct{})
		t.learned.Ended = t.ended
	}
	c.runsMu.Lock()
	c.runs[t] = struct{}{}
	c.runsMu.Unlock()
	if t.ended != nil {
		c.members.poke() // it waits for an earlier holder: look at once
	}
	return t
}

// lose takes away, for good, the runs of pls this member does not hold under a lease (all of
// them, h nil): their partitions' owners decide them. leases (onLost): those it holds under
// leases stop too, a Take a handover covered included; it returns how many.
func (c *Consumer) lose(pls []*partitionLedger, h *handover, leases bool) (leasedStopped int) {
	gone := map[*partitionLedger]bool{}
	for _, pl := range pls {
		gone[pl] = true
	}
	c.runsMu.Lock()
	var stop []*Ticket
	for t := range c.runs {
		if t.lost != nil {
			continue
		}
		if !gone[t.pl] {
			if leases && (t.holder != "" || t.leased) && c.ledger.isReleased(t.pl) {
				t.lost = ErrNotOwned
				stop = append(stop, t)
				leasedStopped++
			}
			continue
		}
		if !h.keeps(t.Record) || t.holder == "" && !t.taking {
			t.lost = ErrNotOwned
			stop = append(stop, t)
		} else {
			// A ticket taken, or being taken, when the handover's commit went out is leased
			// to this member: what the broker has says so (Take tells whether it covered the
			// start, or knows it from the lease).
			t.leased = true
			t.checkLasting()
		}
	}
	c.runsMu.Unlock()
	for _, t := range stop {
		t.stop(ErrNotOwned)
		t.endActing(ErrNotOwned)
	}
	return leasedStopped
}

// tickets is a snapshot of the live tickets.
func (c *Consumer) tickets() []*Ticket {
	c.runsMu.Lock()
	defer c.runsMu.Unlock()
	out := make([]*Ticket, 0, len(c.runs))
	for t := range c.runs {
		out = append(out, t)
	}
	return out
}

// HandedOver says whether this member holds the run under its lease though the run's
// partition went to another member (/status shows it).
func (t *Ticket) HandedOver() bool {
	t.c.runsMu.Lock()
	defer t.c.runsMu.Unlock()
	return t.holder != "" && t.lost == nil && t.c.ledger.isReleased(t.pl)
}

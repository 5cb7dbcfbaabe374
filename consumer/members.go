package consumer

import (
	"context"
	"sync"
	"time"

	"github.com/port-runner/port-runner/internal/clock"
)

// members is this member's view of the group, which its leases rest on (README "Delivery"):
// when it last confirmed its own membership (the fence), and since when the holders of the
// leases it waits for have been gone. Every instant is the sending of the request whose
// answer said so: the membership was true at least then.
type members struct {
	fence time.Duration // a member not confirmed for fence/2 stops its runs; all are dead at fence
	drain time.Duration // how long this member may act on its runs after it left the group

	mu       sync.Mutex
	listedAt map[string]clock.Instant // member id -> the last answer that listed it
	// absent: member id -> the first answer that did not list it, after one that did. It
	// stays should the id ever be listed again: the leases it held end a bound after it
	// first went, and the member stops the runs it took before then (held).
	absent map[string]clock.Instant
	mine   map[string]bool // the member ids this member has had
	left   bool            // this member left the group (a drain)
	leftAt clock.Instant
	wake   chan struct{} // a new ticket may wait for a lease: look now
}

func newMembers(fence, drain time.Duration) *members {
	return &members{fence: fence, drain: drain, listedAt: map[string]clock.Instant{},
		absent: map[string]clock.Instant{}, mine: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// every is how often the group is described: often enough that a confirmation is never
// older than fence/6 while the brokers answer.
func (m *members) every() time.Duration { return max(m.fence/6, 100*time.Millisecond) }

// poke makes the watch look at once.
func (m *members) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// observe records an answer, sent at sent, listing the group's members; interest are the
// ids whose absence matters (lease holders waited for).
func (m *members) observe(sent clock.Instant, listed []string, self string, interest []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if self != "" {
		m.mine[self] = true
	}
	in := map[string]bool{}
	for _, id := range listed {
		in[id] = true
		if at, ok := m.listedAt[id]; !ok || at.Before(sent) {
			m.listedAt[id] = sent
		}
	}
	for id := range m.listedAt {
		interest = append(interest, id)
	}
	for _, id := range interest {
		if _, ok := m.absent[id]; !ok && !in[id] {
			m.absent[id] = sent
		}
	}
}

// confirm records that id was a member when a request sent at sent was accepted (a commit).
func (m *members) confirm(id string, sent clock.Instant) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mine[id] = true
	if at, ok := m.listedAt[id]; !ok || at.Before(sent) {
		m.listedAt[id] = sent
	}
}

// leave records that this member leaves the group now: its runs are held for its drain.
func (m *members) leave() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.left {
		m.left, m.leftAt = true, clock.Now()
	}
}

// held is nil while a run taken under member id holder at takenAt may be acted on (renewed).
func (m *members) held(holder string, takenAt clock.Instant) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.left {
		if clock.Since(m.leftAt) < m.drain {
			return nil
		}
		return ErrLeaseEnded
	}
	at, listed := m.listedAt[holder]
	if gone, ok := m.absent[holder]; ok && takenAt.Before(gone) {
		return ErrNotOwned // an answer since the take left it out: the member was gone
	}
	if !listed || clock.Since(at) >= m.fence/2 {
		return ErrFenced
	}
	return nil
}

// lasts is how long from now this member still acts on the runs it holds under committed
// leases, whatever becomes of it: the rest of its drain once it left the group (others wait
// the leases' bound after that), 0 before (its leases rest on its confirmed membership).
func (m *members) lasts() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.left {
		return 0
	}
	return max(m.drain-clock.Since(m.leftAt), 0)
}

// Lasts is how long from now this member holds the run whatever becomes of it; 0 while
// that rests on its membership being confirmed again and again (Held), or once it does not
// hold the run. Once the member has left the group (a drain) holding the run under a lease
// the group has committed, other members keep their hands off the run until the lease's
// bound after it left, and it acts on the run for Drain of that: the rest of Drain is the
// answer, which no pause of this member shortens (README "Delivery").
func (t *Ticket) Lasts() time.Duration {
	t.c.runsMu.Lock()
	leased := t.heldLeased()
	t.c.runsMu.Unlock()
	if !leased {
		return 0
	}
	return t.c.members.lasts()
}

// Lasting is closed once Lasts says more than 0: the run's lease lasts a known time
// whatever becomes of this member, which its command's shim may hear of at once.
func (t *Ticket) Lasting() <-chan struct{} { return t.lasting }

// heldLeased says whether this member holds the run under a lease the group has committed;
// the caller holds c.runsMu.
func (t *Ticket) heldLeased() bool { return t.leased && t.holder != "" && t.lost == nil }

// checkLasting closes lasting once the run is held under a lease that lasts (Lasts).
// The caller holds c.runsMu.
func (t *Ticket) checkLasting() {
	if !t.lasted && t.heldLeased() && t.c.members.isLeft() {
		t.lasted = true
		close(t.lasting)
	}
}

// leaseEnded says whether a lease can no longer be acted on by its holder: this member's
// own (an earlier run of it here, which the caller has waited for), or a holder gone from
// the group for longer than its bound.
func (m *members) leaseEnded(l Lease) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mine[l.Holder] {
		return true
	}
	gone, ok := m.absent[l.Holder]
	return ok && clock.Since(gone) >= l.Bound
}

// isLeft says whether this member has left the group.
func (m *members) isLeft() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.left
}

// watchMembers describes the group every members.every() until ctx ends, and applies what
// it learns to the live tickets: runs this member may no longer act on stop (the fence), and
// waits for earlier holders end.
func (c *Consumer) watchMembers(ctx context.Context) {
	t := time.NewTicker(c.members.every())
	defer t.Stop()
	for {
		if !c.members.isLeft() {
			c.describeGroup(ctx)
		}
		c.checkTickets()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.members.wake:
		}
	}
}

// describeGroup asks the group's coordinator who its members are.
func (c *Consumer) describeGroup(ctx context.Context) {
	dctx, cancel := context.WithTimeout(ctx, c.members.fence/2)
	defer cancel()
	sent := clock.Now()
	ids, err := c.describe(dctx)
	if err != nil {
		return // nothing confirmed: the fence draws nearer
	}
	var interest []string
	for _, t := range c.tickets() {
		if t.learned.Prior == PriorLeased {
			interest = append(interest, t.learned.Lease.Holder)
		}
	}
	c.members.observe(sent, ids, c.memberID(), interest)
}

// checkTickets stops the runs this member may no longer act on, and ends the waits for
// earlier holders that can no longer act.
func (c *Consumer) checkTickets() {
	for _, t := range c.tickets() {
		if t.ended != nil && !isClosed(t.ended) && c.earlierHolderDone(t) {
			close(t.ended)
		}
		c.runsMu.Lock()
		holder, takenAt, lost := t.holder, t.takenAt, t.lost
		c.runsMu.Unlock()
		if holder == "" {
			continue
		}
		err := lost
		if err == nil {
			err = c.members.held(holder, takenAt)
		}
		if err == nil {
			continue
		}
		t.endActing(err) // also for a run stopped before: its closing may be under way
		if lost != nil || t.stopped.Err() != nil {
			continue
		}
		if err != ErrFenced {
			c.runsMu.Lock()
			t.lost = err
			c.runsMu.Unlock()
		}
		t.stop(err)
	}
}

// earlierHolderDone says whether the earlier holder of t's run can no longer act on it.
func (c *Consumer) earlierHolderDone(t *Ticket) bool {
	if t.learned.Prior == PriorLeased {
		return c.members.leaseEnded(t.learned.Lease)
	}
	// Its owner lost the partition before this member got it: its commands were dead a
	// fence after its last confirmed membership, which came before.
	return clock.Since(t.pl.since) >= c.members.fence
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// withLeaseDefaults fills the timings leases rest on.
func withLeaseDefaults(opts Options) Options {
	if opts.SessionTimeout <= 0 {
		opts.SessionTimeout = 15 * time.Second
	}
	if opts.Fence <= 0 {
		opts.Fence = opts.SessionTimeout * 2 / 3
	}
	if opts.Drain <= 0 {
		opts.Drain = 2 * time.Minute
	}
	if opts.LeaseMargin <= 0 {
		opts.LeaseMargin = 10 * time.Second
	}
	if opts.MaxFuture <= 0 {
		opts.MaxFuture = 5 * time.Minute
	}
	if opts.HistoryAge <= 0 {
		opts.HistoryAge = 10 * time.Minute
	}
	return opts
}

// leaseBound is how long after this member left the group others wait before they decide
// a run it holds (Options.Drain).
func (c *Consumer) leaseBound() time.Duration {
	return c.opts.Drain + c.opts.Fence + c.opts.LeaseMargin
}

package agent

import (
	"context"
	"errors"
	"time"

	"github.com/port-runner/port-runner/consumer"
	"github.com/port-runner/port-runner/metrics"
)

// runLease is what the run lifecycle (run.go, steps.go) needs of a run's way in: the
// Kafka consumer group (kafkaLease, which keeps leases in the partitions' commit metadata),
// Port's claim API (claimLease, transport: polling: the claim, then a lease mark in the
// run's externalRunId), a run with no way in (ownLease: `port-runner try`, and the polling
// sweep's runs), and any other way in that hands this replica runs another replica may also
// see (README "Delivery"). A way in implements it and passes each arriving run to
// Agent.arrive; the lifecycle knows leases only through it. The contract, in the order the
// lifecycle calls it:
//
//   - learned: what earlier holders left of the run, before anything is decided: nothing
//     (a fresh run), finished (skipped at once), held by another replica until ended
//     closes (never acted on before), or unknown (Port decides).
//   - seen, handled: the way in's memory of run ids (a message written twice). seen says
//     whether the id was handled before (dup) and whether that memory would know of a run
//     whose message is from at (covered: false sends the run to Port first); handled adds
//     a run this replica took or decided.
//   - handover: done once the way in gives the run to another replica; a run not taken by
//     then is that replica's, and every wait before take ends with it.
//   - park: the run waits for another holder (maybe hours): its place in the pool goes back.
//   - take: makes the run this replica's, durably, before its command starts (an error: it
//     must not start here). From then on the run is held under this replica's lease. bound
//     is how long the run may be acted on here at most from now (its action's timeout, the
//     kill grace and the closing budget; 0: no bound), for a way in whose lease is written
//     once rather than renewed. It runs on a goroutine of its own while the run is readied
//     (steps_run.go take): lasting and stopped are called while it is under way.
//   - held: whether this replica holds the lease now; while it does not, its command must
//     not run and it must not be closed (forGood: it never will again; else it may, once
//     the way in confirms this replica again). The executor renews the command's shim only
//     while held says so, and for as long as it says the lease lasts whatever becomes of
//     this replica (a drained replica's leases end at a known time).
//   - lasting: closed once held says the lease lasts (nil: it never will).
//   - acting: a context for a request that acts on the run (its closing), done once held
//     fails or the lease ends, so that none is sent or retried once another replica may act
//     on the run.
//   - stopped: ends when the run's command must stop (the lease cannot be confirmed, or is
//     gone); its cause says why (the run's label).
//   - release: the run's end here: finished (decided: closed in Port, or skipped for good;
//     the way in may forget it) or not (the next holder decides it).
//   - shown: the lease as /status shows it (metrics.LeaseHeld or LeaseAwaited, and who).
type runLease interface {
	learned() learned
	seen(id string, at time.Time) (dup, covered bool)
	handled(id string, at time.Time)
	handover() context.Context
	park()
	take(ctx context.Context, bound time.Duration) error
	held() holding
	lasting() <-chan struct{}
	acting(parent context.Context) (context.Context, context.CancelFunc)
	stopped() context.Context
	release(finished bool)
	shown() (lease, holder string)
}

// inheritance is what earlier holders left of a run.
type inheritance int

const (
	inheritNothing  inheritance = iota // nobody took it
	inheritFinished                    // an earlier holder decided it
	inheritHeld                        // an earlier holder took it, and may act on it until ended
	inheritUnknown                     // nothing says whether anyone ran it: Port decides
)

// learned is what a new holder learns.
type learned struct {
	what   inheritance
	holder string          // inheritHeld under a lease: who holds it
	ended  <-chan struct{} // inheritHeld: closed once the earlier holder can no longer act
}

// holding says whether this replica holds a run's lease now; forGood, when it does not,
// that it never will again (otherwise it may: a fence that passes). lasts, when it does:
// how long from now it holds it whatever becomes of this replica (0: only while the way in
// confirms it again and again; executor.Spec.Lasts).
type holding struct {
	err     error
	forGood bool
	lasts   time.Duration
}

// kafkaLease is a run's lease as the consumer group keeps it (package consumer).
type kafkaLease struct{ t *consumer.Ticket }

func (k kafkaLease) learned() learned {
	l := k.t.Learned()
	switch l.Prior {
	case consumer.PriorFinished:
		return learned{what: inheritFinished}
	case consumer.PriorStarted, consumer.PriorLeased:
		return learned{what: inheritHeld, holder: l.Lease.Holder, ended: l.Ended}
	case consumer.PriorUnknown:
		return learned{what: inheritUnknown}
	}
	return learned{what: inheritNothing}
}

func (k kafkaLease) take(ctx context.Context, _ time.Duration) error { return k.t.Take(ctx) }

func (k kafkaLease) held() holding {
	if err := k.t.Held(); err != nil {
		return holding{err: err, forGood: !errors.Is(err, consumer.ErrFenced)}
	}
	return holding{lasts: k.t.Lasts()}
}

func (k kafkaLease) lasting() <-chan struct{}  { return k.t.Lasting() }
func (k kafkaLease) stopped() context.Context  { return k.t.Stopped() }
func (k kafkaLease) handover() context.Context { return k.t.Handover }
func (k kafkaLease) release(finished bool)     { k.t.Release(finished) }
func (k kafkaLease) park()                     { k.t.Park() }

func (k kafkaLease) seen(id string, at time.Time) (bool, bool) { return k.t.Seen(id, at) }
func (k kafkaLease) handled(id string, at time.Time)           { k.t.Handled(id, at) }

func (k kafkaLease) acting(parent context.Context) (context.Context, context.CancelFunc) {
	return k.t.Acting(parent)
}

func (k kafkaLease) shown() (string, string) {
	if k.t.HandedOver() {
		return metrics.LeaseHeld, ""
	}
	if l := k.t.Learned(); l.Prior == consumer.PriorLeased && !isDone(l.Ended) {
		return metrics.LeaseAwaited, l.Lease.Holder
	}
	return "", ""
}

// ownLease is the lease of a run with no way in (try): this replica holds it outright.
type ownLease struct{}

func (ownLease) learned() learned                          { return learned{} }
func (ownLease) take(context.Context, time.Duration) error { return nil }
func (ownLease) held() holding                             { return holding{} }
func (ownLease) lasting() <-chan struct{}                  { return nil }
func (ownLease) stopped() context.Context                  { return context.Background() }
func (ownLease) handover() context.Context                 { return context.Background() }
func (ownLease) release(bool)                              {}
func (ownLease) park()                                     {}
func (ownLease) seen(string, time.Time) (bool, bool)       { return false, true }
func (ownLease) handled(string, time.Time)                 {}
func (ownLease) shown() (string, string)                   { return "", "" }

func (ownLease) acting(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithCancel(parent)
}

func isDone(ch <-chan struct{}) bool {
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

package agent

import (
	"context"
	"errors"
	"time"

	"github.com/port-runner/port-runner/consumer"
	"github.com/port-runner/port-runner/metrics"
)

// runLease is a run's lease as its way in keeps it (DESIGN "A run's lease"; README
// "Delivery"): what earlier holders left (learned), taking it before acting on it (take),
// whether this replica still holds it (held: the way in renews it), when its command must
// stop (stopped), and its end (release). The run lifecycle (run.go) knows leases only
// through it: the Kafka consumer group keeps them in its commit metadata (kafkaLease);
// `port-runner try`, which has no way in, holds its one run outright (ownLease).
type runLease interface {
	learned() learned
	take(ctx context.Context) error
	held() holding
	stopped() context.Context
	// handover is done once the way in gives the run's source to another replica: a run
	// not taken by then is that replica's.
	handover() context.Context
	release(finished bool)
	// park gives the run's place in the pool back: it waits for another holder.
	park()
	// seen and handled are the run ids the way in remembers (a message written twice):
	// dup, handled before; covered, the memory would know of a run whose message is from at.
	seen(id string, at time.Time) (dup, covered bool)
	handled(id string, at time.Time)
	// shown is the lease as /status shows it: metrics.LeaseHeld or LeaseAwaited, and who.
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
// that it never will again (otherwise it may: a fence that passes).
type holding struct {
	err     error
	forGood bool
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

func (k kafkaLease) take(ctx context.Context) error { return k.t.Take(ctx) }

func (k kafkaLease) held() holding {
	err := k.t.Held()
	return holding{err: err, forGood: err != nil && !errors.Is(err, consumer.ErrFenced)}
}

func (k kafkaLease) stopped() context.Context  { return k.t.Stopped() }
func (k kafkaLease) handover() context.Context { return k.t.Handover }
func (k kafkaLease) release(finished bool)     { k.t.Release(finished) }
func (k kafkaLease) park()                     { k.t.Park() }

func (k kafkaLease) seen(id string, at time.Time) (bool, bool) { return k.t.Seen(id, at) }
func (k kafkaLease) handled(id string, at time.Time)           { k.t.Handled(id, at) }

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

func (ownLease) learned() learned                    { return learned{} }
func (ownLease) take(context.Context) error          { return nil }
func (ownLease) held() holding                       { return holding{} }
func (ownLease) stopped() context.Context            { return context.Background() }
func (ownLease) handover() context.Context           { return context.Background() }
func (ownLease) release(bool)                        {}
func (ownLease) park()                               {}
func (ownLease) seen(string, time.Time) (bool, bool) { return false, true }
func (ownLease) handled(string, time.Time)           {}
func (ownLease) shown() (string, string)             { return "", "" }

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

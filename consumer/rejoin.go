package consumer

import (
	"context"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
)

// rejoinState is a rejoin the poll loop owes: a member under KIP-848 that lost its
// partitions gave up the runs it held under leases (onLost) while franz-go keeps its member
// id, which the waiters for those leases wait to see go (README "Delivery").
type rejoinState struct {
	mu   sync.Mutex
	due  *kgo.Client        // the client whose member id is to go; nil: none
	poll context.CancelFunc // ends the poll under way, which may wait for records for ever
}

// requestRejoin has the poll loop give cl's member id up and join under a new one.
func (c *Consumer) requestRejoin(cl *kgo.Client) {
	c.rejoin.mu.Lock()
	c.rejoin.due = cl
	endPoll := c.rejoin.poll
	c.rejoin.mu.Unlock()
	if endPoll != nil {
		endPoll()
	}
}

// rejoinDue says whether cl's member id is to be given up.
func (c *Consumer) rejoinDue(cl *kgo.Client) bool {
	c.rejoin.mu.Lock()
	defer c.rejoin.mu.Unlock()
	return c.rejoin.due == cl
}

// pollContext is ctx for one poll of cl, ended early by a rejoin request.
func (c *Consumer) pollContext(ctx context.Context, cl *kgo.Client) (context.Context, context.CancelFunc) {
	pctx, cancel := context.WithCancel(ctx)
	c.rejoin.mu.Lock()
	defer c.rejoin.mu.Unlock()
	if c.rejoin.due == cl {
		cancel()
	}
	c.rejoin.poll = cancel
	return pctx, func() {
		c.rejoin.mu.Lock()
		c.rejoin.poll = nil
		c.rejoin.mu.Unlock()
		cancel()
	}
}

// rejoinAs leaves the group as old's member id and goes on under a new client, which joins
// under a new id: nothing speaks for the old id again, so the coordinator drops it at once
// (or, should the leave not reach it, when its session ends), and the members waiting for its
// leases see it go. Every run of the old membership stops here first: the new member starts
// from nothing, and the next owners decide those runs (the fence, or the leases' bound after
// the id went).
func (c *Consumer) rejoinAs(ctx context.Context, old *kgo.Client) error {
	id, _ := old.GroupMetadata()
	c.log.Warn("leaving the group under a member id whose leased runs were given up, to join under a new one",
		zap.String("member", id))
	leaveGroup(ctx, old, c.log.With(zap.String("member", id))) // revokes what old got back meanwhile (onRevoked)
	// Closed before the next client is made: client hooks (metrics) see one at a time.
	old.Close()
	c.releaseAll()
	if ctx.Err() != nil {
		return nil // stopping: no new member to join only to leave
	}
	cl, err := c.newClient()
	if err != nil {
		return fmt.Errorf("kafka client to rejoin the group under a new member id: %w", err)
	}
	c.cl.Store(cl)
	c.rejoin.mu.Lock()
	if c.rejoin.due == old {
		c.rejoin.due = nil
	}
	c.rejoin.mu.Unlock()
	c.log.Info("rejoining the group under a new member id", zap.String("previous", id))
	return nil
}

// releaseAll releases whatever partitions the ledger still has, and stops every run taken
// under the closed client's member ids (its leased runs too), as onLost does.
func (c *Consumer) releaseAll() {
	parts := c.ledger.owned()
	c.forgetUnknownPrior(parts)
	c.lose(c.ledger.release(parts), nil, true)
}

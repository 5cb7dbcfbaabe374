// Package polling is the agent's second way in (transport: polling): instead of the Kafka
// consumer it asks Port's claim-pending routes for runs, never for more than the pool has
// free slots, and hands each claimed run to a handler that acknowledges and runs it. When
// Port has nothing pending it backs off up to an interval; when a slot frees it claims at
// once.
package polling

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/port-runner/port-runner/internal/backoff"
	"github.com/port-runner/port-runner/internal/portapi"
)

// API is the part of Port's API the source claims from (*portapi.Client).
type API interface {
	ClaimRuns(ctx context.Context, cl portapi.Claim) ([]portapi.Claimed, error)
	ClaimNodeRuns(ctx context.Context, cl portapi.Claim) ([]portapi.Claimed, error)
}

// Claim is one run Port handed to this replica: hidden from every other claimer until
// Expires (the visibility timeout counted from before the claim was sent, so never later
// than Port's own), unless this replica acknowledges it before.
type Claim struct {
	portapi.Claimed
	Expires time.Time
}

// Handler takes one claimed run through to its end here: acknowledged and run, or left
// unacknowledged for Port to offer again. The run's slot is free when it returns.
type Handler func(c Claim)

// Options configure a Source. Zero durations get the defaults noted.
type Options struct {
	API API
	// Slots is how many runs may be held at once (the pool's running slots): the source
	// never claims more than are free.
	Slots int
	// NodeRuns: claim workflow node runs too (some action runs them).
	NodeRuns bool
	// MinInterval and Interval bound the wait between claims while Port has nothing
	// pending: MinInterval (default 1s) after a claim that found runs, doubling up to
	// Interval (default 10s) while none come.
	MinInterval, Interval time.Duration
	// Visibility is the claims' visibility timeout (default 60s).
	Visibility time.Duration
	// ErrorBackoff shapes the wait after a failed claim (default 1s doubling to 5m).
	ErrorBackoff backoff.Policy
	Logger       *zap.Logger
}

// Source claims runs for one replica.
type Source struct {
	opts  Options
	log   *zap.Logger
	freed chan struct{} // a slot was freed (buffer 1: wakes the loop once)

	mu   sync.Mutex
	held int
}

// claimTimeout bounds one claim request (its retries included): a claim that hangs must
// not keep free slots unused.
const claimTimeout = 30 * time.Second

// New makes a Source; nothing is claimed until Run.
func New(opts Options) *Source {
	if opts.Slots < 1 {
		opts.Slots = 1
	}
	if opts.MinInterval <= 0 {
		opts.MinInterval = time.Second
	}
	if opts.Interval <= 0 {
		opts.Interval = 10 * time.Second
	}
	opts.Interval = max(opts.Interval, opts.MinInterval)
	if opts.Visibility <= 0 {
		opts.Visibility = 60 * time.Second
	}
	if opts.ErrorBackoff == (backoff.Policy{}) {
		opts.ErrorBackoff = backoff.Policy{Base: time.Second, Max: 5 * time.Minute}
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	return &Source{opts: opts, log: opts.Logger, freed: make(chan struct{}, 1)}
}

// Held is how many claimed runs the source's handlers hold now.
func (s *Source) Held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

// Run claims until ctx ends, each claimed run in a handler of its own, and returns once
// every handler has returned.
func (s *Source) Run(ctx context.Context, handle Handler) error {
	var handlers sync.WaitGroup
	defer handlers.Wait()
	idle, failures := 0, 0
	nodeFirst := false
	for {
		free := s.waitFree(ctx)
		if free == 0 {
			return nil // ctx ended
		}
		claims, asked, err := s.claim(ctx, free, nodeFirst)
		nodeFirst = !nodeFirst // neither kind starves the other of slots
		for _, c := range claims {
			s.take()
			handlers.Go(func() {
				defer s.release()
				handle(c)
			})
		}
		var wait time.Duration
		switch {
		case err != nil && ctx.Err() == nil:
			wait = s.opts.ErrorBackoff.Delay(failures, 0)
			failures++
			s.log.Warn("claiming runs from Port failed; trying again", zap.Duration("wait", wait), zap.Error(err))
		case len(claims) >= asked:
			// Port may hold more: claim again as soon as slots allow.
			failures, idle = 0, 0
			continue
		default:
			// Port has nothing more pending now: wait, longer the longer it stays so.
			failures = 0
			if len(claims) > 0 {
				idle = 0
			}
			wait = min(s.opts.MinInterval<<min(idle, 20), s.opts.Interval)
			idle++
		}
		if s.sleep(ctx, wait) != nil {
			return nil
		}
	}
}

// claim asks for up to free runs, action runs and node runs in turn (nodeFirst: node runs
// first), each kind for what the other left. asked is how many it asked for in all.
func (s *Source) claim(ctx context.Context, free int, nodeFirst bool) (claims []Claim, asked int, err error) {
	kinds := []bool{false}
	if s.opts.NodeRuns {
		kinds = []bool{nodeFirst, !nodeFirst}
	}
	for _, node := range kinds {
		limit := min(free-len(claims), maxClaim)
		if limit <= 0 {
			break
		}
		asked += limit
		got, err := s.claimKind(ctx, node, limit)
		claims = append(claims, got...)
		if err != nil {
			return claims, asked, err
		}
	}
	return claims, asked, nil
}

// maxClaim is Port's documented upper bound of limit on a claim.
const maxClaim = 100

func (s *Source) claimKind(ctx context.Context, node bool, limit int) ([]Claim, error) {
	cctx, cancel := context.WithTimeout(ctx, claimTimeout)
	defer cancel()
	// Counted from before the request leaves: Port's own visibility ends no sooner.
	expires := time.Now().Add(s.opts.Visibility)
	claim, kind := s.opts.API.ClaimRuns, "run"
	if node {
		claim, kind = s.opts.API.ClaimNodeRuns, "node_run"
	}
	got, err := claim(cctx, portapi.Claim{Limit: limit, VisibilityTimeout: s.opts.Visibility})
	if len(got) > limit {
		// More than asked for would hold more runs than there are slots: the rest are not
		// acknowledged, and Port offers them again once their visibility ends.
		s.log.Warn("Port gave more runs than claimed; leaving the rest", zap.Int("limit", limit), zap.Int("got", len(got)))
		got = got[:limit]
	}
	out := make([]Claim, 0, len(got))
	for _, c := range got {
		out = append(out, Claim{Claimed: c, Expires: expires})
	}
	if err != nil {
		return out, fmt.Errorf("claim %ss: %w", kind, err)
	}
	return out, nil
}

// waitFree blocks until a slot is free and returns how many are; 0 once ctx ended.
func (s *Source) waitFree(ctx context.Context) int {
	for {
		s.mu.Lock()
		free := s.opts.Slots - s.held
		s.mu.Unlock()
		if free > 0 {
			return free
		}
		select {
		case <-s.freed:
		case <-ctx.Done():
			return 0
		}
	}
}

// sleep waits d, or less if a slot frees meanwhile; an error once ctx ended.
func (s *Source) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.freed:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

func (s *Source) take() {
	s.mu.Lock()
	s.held++
	s.mu.Unlock()
}

func (s *Source) release() {
	s.mu.Lock()
	s.held--
	s.mu.Unlock()
	select {
	case s.freed <- struct{}{}:
	default:
	}
}

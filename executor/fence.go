package executor

import (
	"time"

	"github.com/port-runner/port-runner/internal/clock"
	"github.com/port-runner/port-runner/internal/shim"
)

// leaseRenewal renews a command's lease with its shim (Spec.Fence), or, without a shim,
// kills the command itself once the fence has passed since the last renewal.
type leaseRenewal struct {
	spec    Spec
	p       *process
	ticker  *time.Ticker
	last    clock.Instant
	holding bool // renewals go on; once false, never again
	killed  bool
}

// renewLease starts renewing p's lease; nil (renewing nothing) when spec has no fence.
func renewLease(spec Spec, p *process) *leaseRenewal {
	if spec.Fence <= 0 || spec.Held == nil {
		return nil
	}
	return &leaseRenewal{spec: spec, p: p, ticker: time.NewTicker(spec.Fence / 4), last: clock.Now(), holding: true}
}

func (l *leaseRenewal) tick() <-chan time.Time {
	if l == nil {
		return nil
	}
	return l.ticker.C
}

func (l *leaseRenewal) stop() {
	if l != nil {
		l.ticker.Stop()
	}
}

// renew renews the lease while the run is held; after that, where there is no shim to
// enforce the fence, it kills the command once the fence has passed. The lease is asked
// again after the renewal: an agent paused between the first answer and the renewal (a
// freeze, a GC pause) may have renewed a lease it no longer holds, and then kills the
// command at once, so a renewal never outlives the lease by more than that check.
func (l *leaseRenewal) renew() {
	if l.holding && l.spec.Held() {
		if l.p.ctl != nil {
			l.p.control(shim.Renew)
		}
		if l.spec.Held() {
			l.last = clock.Now()
			return
		}
		l.holding, l.killed = false, true
		l.p.kill()
		return
	}
	l.holding = false
	if l.p.ctl == nil && !l.killed && clock.Since(l.last) >= l.spec.Fence {
		l.killed = true
		l.p.kill()
	}
}

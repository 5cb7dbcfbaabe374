package executor

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/port-runner/port-runner/internal/clock"
	"github.com/port-runner/port-runner/internal/shim"
)

// leaseRenewal renews a command's lease with its shim (Spec.Fence), or, without a shim,
// kills the command itself once the lease has passed since the last renewal. A lease that
// lasts a known time whatever becomes of the agent (Spec.Lasts: a drained replica's, which
// no other replica acts on before its end) is renewed until that end: the shim then kills
// the command only once it has passed, so a pause of the agent before it (a GC, a starved
// or frozen machine) does not cut the run short, and one past it still ends the command
// at the lease's end (README "Delivery").
type leaseRenewal struct {
	p      *process
	period time.Duration // between renewals: a quarter of the fence
	timer  *time.Timer   // the next renewal (beat); nil when Spec.Renewals renews it
	shared *Renewals     // renews it, when not its own run's goroutine
	// lasting is Spec.Lasting until heard (renewLasting); the run's goroutine's alone.
	lasting <-chan struct{}

	mu      sync.Mutex    // the run's goroutine and Renewals' both renew
	spec    Spec          // its OnLasting is cleared once called
	until   clock.Instant // when the command dies unless renewed: without a shim, or once lost
	told    time.Duration // the longest lasting lease the shim was told
	holding bool          // renewals go on; once false, never again
	killed  bool
	stopped bool // the run is ending: its process is not acted on again
}

// renewLease starts renewing p's lease: on Spec.Renewals' beats where it has them for this
// fence, else on the run's own goroutine (tick); nil (renewing nothing) when spec has no fence.
func renewLease(spec Spec, p *process) *leaseRenewal {
	if spec.Fence <= 0 || spec.Held == nil {
		return nil
	}
	period := max(spec.Fence/4, time.Millisecond)
	l := &leaseRenewal{spec: spec, p: p, period: period, lasting: spec.Lasting, holding: true}
	l.setUntil(spec.Fence)
	if r := spec.Renewals; r != nil && r.period == period {
		l.shared = r
		r.add(l)
	} else {
		l.timer = time.NewTimer(beat(period))
	}
	return l
}

// Renewals renews the leases of all an agent's commands whose quarter fence is its period
// from one goroutine (Run), on the same beats as any run would (beat): a thousand sleeping
// commands wake the agent once a beat, not a thousand goroutines (BENCHMARKS.md). The agent
// makes one and runs it for as long as it runs commands (Spec.Renewals).
type Renewals struct {
	period time.Duration
	mu     sync.Mutex
	leases map[*leaseRenewal]struct{}
}

// NewRenewals renews the leases of commands whose fence is 4 x period.
func NewRenewals(period time.Duration) *Renewals {
	return &Renewals{period: period, leases: map[*leaseRenewal]struct{}{}}
}

// Run renews, on every beat, each lease added and not stopped, until ctx ends.
func (r *Renewals) Run(ctx context.Context) {
	if r.period < time.Millisecond {
		return // no lease has such a period (renewLease): nothing to renew
	}
	t := time.NewTimer(beat(r.period))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		t.Reset(beat(r.period))
		r.mu.Lock()
		leases := slices.Collect(maps.Keys(r.leases))
		r.mu.Unlock()
		for _, l := range leases {
			l.renew()
		}
	}
}

func (r *Renewals) add(l *leaseRenewal) {
	r.mu.Lock()
	r.leases[l] = struct{}{}
	r.mu.Unlock()
}

func (r *Renewals) remove(l *leaseRenewal) {
	r.mu.Lock()
	delete(r.leases, l)
	r.mu.Unlock()
}

// beat is how long until the next renewal: the next multiple of period on the clock, so the
// renewals of all the agent's commands come at the same instants and wake it once a period,
// not once per command (a thousand sleeping runs, a thousand wake-ups of an idle agent a
// period otherwise: BENCHMARKS.md). Renewals are never further apart than period.
func beat(period time.Duration) time.Duration {
	period = max(period, time.Millisecond)
	return period - time.Duration(time.Now().UnixNano()%int64(period))
}

func (l *leaseRenewal) tick() <-chan time.Time {
	if l == nil || l.timer == nil {
		return nil
	}
	return l.timer.C
}

// ticked renews at a beat, and sets the next one.
func (l *leaseRenewal) ticked() {
	l.timer.Reset(beat(l.period))
	l.renew()
}

// lastingC is Spec.Lasting until renewLasting has heard it.
func (l *leaseRenewal) lastingC() <-chan struct{} {
	if l == nil {
		return nil
	}
	return l.lasting
}

// renewLasting renews at once when the lease has come to last (Spec.Lasting).
func (l *leaseRenewal) renewLasting() {
	l.lasting = nil
	l.renew()
}

// stop ends the renewals: once it returns, the process is not acted on again (it may be
// reaped next).
func (l *leaseRenewal) stop() {
	if l == nil {
		return
	}
	if l.timer != nil {
		l.timer.Stop()
	}
	if l.shared != nil {
		l.shared.remove(l)
	}
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
}

// renew renews the lease while the run is held; after that, where there is no shim to
// enforce the fence, it kills the command once the lease has passed. The lease is asked
// again after the renewal: an agent paused between the first answer and the renewal (a
// freeze, a GC pause) may have renewed a lease it no longer holds, and then kills the
// command at once, so a renewal never outlives the lease by more than that check. A lease
// that lasts (Spec.Lasts) is renewed until its end; one the pause has shortened meanwhile
// is renewed again with what is left of it.
func (l *leaseRenewal) renew() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return
	}
	if l.holding && l.spec.Held() {
		lasts := l.lasts()
		l.send(lasts)
		held := l.spec.Held()
		now := l.lasts()
		if !held || lasts > 0 && now == 0 { // it ended meanwhile
			l.lose()
			l.p.kill()
			l.killed = !l.p.ctl.set // a shim's is done once its lease has surely passed (expire)
			return
		}
		if lasts-now > l.spec.Fence/8 {
			lasts = now
			l.send(lasts)
		}
		if lasts == 0 {
			l.setUntil(l.spec.Fence)
			return
		}
		l.setUntil(lasts)
		if on := l.spec.OnLasting; on != nil { // the first renewal that told the shim
			l.spec.OnLasting = nil
			// Told outside the lock: it logs, which must not hold up the renewals. Taken
			// back by a defer, so that a panic of on's meets renew's deferred unlock with the
			// lock held (unlocking an unlocked mutex is a fatal error, past any recover).
			func() {
				l.mu.Unlock()
				defer l.mu.Lock()
				on(lasts)
			}()
		}
		return
	}
	if l.holding {
		l.lose()
	}
	l.expire()
}

// lose ends the renewals for good. Without a shim, the command is killed once until (set at
// each renewal) has passed. A shim enforces its fence itself, unless its command stopped it
// (see process.control): it is resumed now, and killed itself (expire) if still there once
// its own fence has surely passed: a fence, or the longest lasting lease it was told, from
// now.
func (l *leaseRenewal) lose() {
	l.holding = false
	if l.p.ctl.set {
		l.p.resume()
		l.until = clock.Now().Add(max(l.spec.Fence, l.told))
	}
}

// expire kills the command once its lost lease has surely passed (until), if nothing has
// yet: the shim itself where there is one and it is stopped (see lose, process.killShim),
// else the command's group.
func (l *leaseRenewal) expire() {
	if l.killed || clock.Now().Before(l.until) {
		return
	}
	if l.p.ctl.set {
		l.killed = l.p.killShim() // false: it runs, ending the command; asked again next beat
		return
	}
	l.killed = true
	l.p.kill()
}

// setUntil sets when the command dies unless renewed, d from now. Only without a shim: a
// shim enforces its fence itself, and the clock read (a real syscall: unix.ClockGettime
// takes no vDSO path) would be for nothing.
func (l *leaseRenewal) setUntil(d time.Duration) {
	if !l.p.ctl.set {
		l.until = clock.Now().Add(d)
	}
}

// lasts is how long the held lease lasts whatever becomes of the agent (Spec.Lasts).
func (l *leaseRenewal) lasts() time.Duration {
	if l.spec.Lasts == nil {
		return 0
	}
	return max(l.spec.Lasts(), 0)
}

// send renews the shim's fence: for the lease's rest when it lasts, else for a fence.
func (l *leaseRenewal) send(lasts time.Duration) {
	switch {
	case !l.p.ctl.set:
	case lasts > 0:
		l.told = max(l.told, lasts)
		l.p.tryControl(shim.LastingMessage(lasts.Milliseconds()))
	default:
		l.p.tryRenew()
	}
}

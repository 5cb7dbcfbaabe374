package portproxy

// Binding a run's token to the run's processes (Options.BindToProcess).

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"go.uber.org/zap"
)

// ProcessBindingSupported reports whether Options.BindToProcess works on this platform.
func ProcessBindingSupported() bool { return processBinding }

// Bind ties token to the process tree rooted at pid (executor.Spec.OnStart): with
// BindToProcess, only that process and its descendants may use the token. The first Bind
// of a token counts; an unknown (revoked) token is ignored.
func (p *Proxy) Bind(token string, pid int) {
	g := p.lookup(token)
	if g == nil || pid <= 0 {
		return
	}
	g.bindOnce.Do(func() {
		g.root = pid
		close(g.bound)
	})
}

type connKey struct{}

// connPeer caches, for one connection, the runs whose tree its peer process was found in
// or not: by run, not by its root's pid, which a later run may have once pids wrap around.
type connPeer struct {
	mu      sync.Mutex
	checked map[*grant]bool
}

// checkPeer refuses a request whose connection does not come from the grant's run: the
// process holding the client socket must be the run's root or below it. A request that
// comes before the executor's Bind waits up to BindWait for it.
func (p *Proxy) checkPeer(r *http.Request, g *grant, l *live) (apiErr, bool) {
	t := time.NewTimer(p.bindWait)
	defer t.Stop()
	select {
	case <-g.bound:
	case <-l.ctx.Done():
		return errUnauthorized, true
	case <-r.Context().Done():
		return errNotRunProcess, true
	case <-t.C:
		return apiErr{http.StatusUnauthorized, "unauthorized", "the run's command has not started (yet): its token is not valid"}, true
	}
	cp, _ := r.Context().Value(connKey{}).(*connPeer)
	if cp == nil {
		return errNotRunProcess, true // not served by Serve: nothing to check against
	}
	cp.mu.Lock()
	defer cp.mu.Unlock() // one lookup per connection and run, even with pipelined requests
	if ok, done := cp.checked[g]; done {
		return errNotRunProcess, !ok
	}
	ok, err := p.peerOf(r, g.root)
	if err != nil {
		p.log.Warn("cannot tell which process sent a Port API request; refused", zap.String("run_id", g.runID), zap.Error(err))
		return errNotRunProcess, true // not cached: a transient /proc failure may pass
	}
	if cp.checked == nil {
		cp.checked = map[*grant]bool{}
	}
	cp.checked[g] = ok
	return errNotRunProcess, !ok
}

func (p *Proxy) peerOf(r *http.Request, root int) (bool, error) {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false, errors.New("no local address for the connection")
	}
	la, err := netip.ParseAddrPort(local.String())
	if err != nil {
		return false, err
	}
	ra, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false, err
	}
	return peerInTree(la, ra, root)
}

//go:build linux

package benchkit

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/port-runner/port-runner/internal/emulator"
)

// Port is the Port API emulator, served over real HTTP on 127.0.0.1, with a tracker of the
// runs it has seen terminated.
type Port struct {
	Emu *emulator.Emulator
	URL string

	mu      sync.Mutex
	ended   map[string]time.Time
	changed chan struct{} // closed and replaced at every first termination
	stop    func()
}

// StartPort starts the emulator; Close stops it.
func StartPort(ctx context.Context) (*Port, error) {
	p := &Port{ended: map[string]time.Time{}, changed: make(chan struct{})}
	p.Emu = emulator.New(emulator.Options{
		ClientID: ClientID, ClientSecret: ClientSecret, OrgID: OrgID,
		Logf: p.logf,
	})
	ectx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	srv, err := p.Emu.Serve(ectx, "127.0.0.1:0")
	if err != nil {
		cancel()
		return nil, fmt.Errorf("emulator: %w", err)
	}
	p.URL = srv.URL()
	p.stop = func() { cancel(); _ = srv.Wait() }
	return p, nil
}

func (p *Port) Close() { p.stop() }

// logf is the emulator's per-request hook: "emulator: %s %s -> %d" (method, path, status).
func (p *Port) logf(_ string, args ...any) {
	if len(args) != 3 {
		return
	}
	method, _ := args[0].(string)
	path, _ := args[1].(string)
	status, _ := args[2].(int)
	if status != http.StatusOK || (method != http.MethodPost && method != http.MethodPatch) {
		return
	}
	rest, ok := strings.CutPrefix(path, "/v1/actions/runs/")
	if !ok {
		return
	}
	id, _, _ := strings.Cut(rest, "/")
	r, ok := p.Emu.Run(id)
	if !ok || r.Status == "IN_PROGRESS" {
		return
	}
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, seen := p.ended[id]; !seen {
		p.ended[id] = now
		close(p.changed)
		p.changed = make(chan struct{})
	}
}

// Ended counts the given runs the emulator has terminated.
func (p *Port) Ended(ids []string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, id := range ids {
		if _, ok := p.ended[id]; ok {
			n++
		}
	}
	return n
}

// EndedTotal counts every run the emulator has terminated.
func (p *Port) EndedTotal() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.ended)
}

// EndedAt is when the emulator terminated the run (zero if it has not).
func (p *Port) EndedAt(id string) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ended[id]
}

// WaitEnded blocks until every one of ids is terminated, or ctx ends. It wakes on each
// termination rather than polling.
func (p *Port) WaitEnded(ctx context.Context, ids []string) error {
	for {
		p.mu.Lock()
		ch := p.changed
		p.mu.Unlock()
		n := p.Ended(ids)
		if n == len(ids) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%d of %d runs terminated: %w", n, len(ids), ctx.Err())
		}
	}
}

// RequestsPerRun counts the requests Port received about each of ids (every method on
// /v1/actions/runs/{id}...), and the totals.
func (p *Port) RequestsPerRun(ids []string) (perRun map[string]int, total int) {
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	perRun = make(map[string]int, len(ids))
	for _, rq := range p.Emu.Requests() {
		rest, ok := strings.CutPrefix(rq.Path, "/v1/actions/runs/")
		if !ok {
			continue
		}
		id, _, _ := strings.Cut(rest, "/")
		if want[id] {
			perRun[id]++
			total++
		}
	}
	return perRun, total
}

// Problems says what went wrong with the given runs in Port: not terminated, terminated twice,
// rejected terminations.
func (p *Port) Problems(ids []string) []string {
	var notEnded, doubled, rejected int
	for _, id := range ids {
		r, ok := p.Emu.Run(id)
		switch {
		case !ok || r.Status == "IN_PROGRESS":
			notEnded++
		case r.Terminations > 1:
			doubled++
		}
		if ok {
			rejected += r.RejectedTerminations
		}
	}
	var out []string
	if notEnded > 0 {
		out = append(out, fmt.Sprintf("%d of %d runs not terminated", notEnded, len(ids)))
	}
	if doubled > 0 || rejected > 0 {
		out = append(out, fmt.Sprintf("%d runs terminated twice, %d rejected terminations", doubled, rejected))
	}
	return out
}

package agent

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/portapi"
)

// gets counts the GETs the emulator answered for path.
func gets(e *emulator.Emulator, path string) int {
	n := 0
	for _, r := range e.Requests() {
		if r.Method == "GET" && r.Path == path {
			n++
		}
	}
	return n
}

// newTestWatch is a watch with a one-minute interval asking an emulator over HTTP.
func newTestWatch(t *testing.T) (*emulator.Emulator, *portapi.Client, *portWatch) {
	t.Helper()
	e := emulator.New(emulator.Options{ClientID: "c", ClientSecret: testKey})
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	api, err := portapi.New(portapi.Options{BaseURL: srv.URL, ClientID: "c", ClientSecret: testKey})
	if err != nil {
		t.Fatal(err)
	}
	return e, api, newPortWatch(api, time.Minute, zap.NewNop())
}

// The watch of long runs, turn by turn: one list request covers every open run; a run
// missing from it is confirmed with one GET before its command is stopped; a refused change
// is asked about at once; when Port refuses the list, each run is asked about on its own.
func TestPortWatch(t *testing.T) {
	e, api, w := newTestWatch(t)
	runCtx := map[string]context.Context{}
	stop := map[string]func() bool{}
	for _, id := range []string{"r_a", "r_b", "r_c"} {
		e.RegisterRun(id, "deploy")
		ctx, cancel := context.WithCancelCause(context.Background())
		t.Cleanup(func() { cancel(nil) })
		watched := w.watch(cancel, id, api, false, zap.NewNop(), time.Now(), time.Time{})
		runCtx[id], stop[id] = ctx, func() bool { return w.unwatch(watched) }
	}
	// turn is one turn of the watch with every run an interval older than it is.
	turn := func() {
		w.mu.Lock()
		for _, r := range w.runs {
			r.started = r.started.Add(-w.interval)
			r.checked, r.got = r.checked.Add(-w.interval), r.got.Add(-w.interval)
		}
		w.mu.Unlock()
		w.turn(context.Background())
	}
	turn()
	if gets(e, "/v1/actions/runs") != 1 || gets(e, "/v1/actions/runs/r_a") != 0 {
		t.Fatalf("%d list requests, %d GETs of an open run the list covers", gets(e, "/v1/actions/runs"), gets(e, "/v1/actions/runs/r_a"))
	}
	if err := e.CancelRun("r_b"); err != nil {
		t.Fatal(err)
	}
	turn()
	if !errors.Is(context.Cause(runCtx["r_b"]), errCancelledInPort) || gets(e, "/v1/actions/runs/r_b") != 1 || !w.cancelled("r_b") {
		t.Fatalf("r_b: cause %v, %d GETs", context.Cause(runCtx["r_b"]), gets(e, "/v1/actions/runs/r_b"))
	}
	if !stop["r_b"]() || runCtx["r_a"].Err() != nil || gets(e, "/v1/actions/runs/r_a") != 0 {
		t.Fatal("r_b not reported cancelled, or r_a cancelled or fetched too")
	}

	// A refusal of r_a's log is asked about at once (its list check a moment ago says
	// nothing of it), then not again within the interval.
	w.refused("r_a", errors.New("HTTP 409"))
	w.turn(context.Background())
	w.refused("r_a", errors.New("HTTP 409"))
	w.turn(context.Background())
	if n := gets(e, "/v1/actions/runs/r_a"); n != 1 || gets(e, "/v1/actions/runs") != 2 {
		t.Fatalf("%d GETs of the refused run, want 1", n)
	}

	// Port refuses the list: from then on each run is asked about on its own.
	e.FailNext(1, 404)
	turn()
	turn()
	if gets(e, "/v1/actions/runs") != 3 || gets(e, "/v1/actions/runs/r_c") != 2 {
		t.Fatalf("after the list was refused: %d list requests, %d GETs of r_c", gets(e, "/v1/actions/runs"), gets(e, "/v1/actions/runs/r_c"))
	}
	if stop["r_a"]() || stop["r_c"]() || w.cancelled("r_a") {
		t.Fatal("open runs reported cancelled")
	}
}

// Long runs whose commands started a few moments apart are still asked about together: the
// turn that finds one due asks with the list when another action run is open, and the
// list's answer counts as a check for every open run it shows, due or not, so the next
// turns do not ask about them one by one as each in turn reaches the interval.
func TestPortWatchCoversRunsNotDueYet(t *testing.T) {
	e, api, w := newTestWatch(t)
	for _, id := range []string{"r_a", "r_b", "r_c"} {
		e.RegisterRun(id, "deploy")
		_, cancel := context.WithCancelCause(context.Background())
		t.Cleanup(func() { cancel(nil) })
		w.watch(cancel, id, api, false, zap.NewNop(), time.Now(), time.Time{})
	}
	// age moves every run's clock back: as if d had passed.
	age := func(d time.Duration) {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, r := range w.runs {
			r.started = r.started.Add(-d)
			if !r.checked.IsZero() {
				r.checked = r.checked.Add(-d)
			}
		}
	}
	w.mu.Lock()
	w.runs["r_a"].started = w.runs["r_a"].started.Add(-w.interval / 2) // started first
	w.mu.Unlock()
	age(w.interval / 2) // r_a has run for the interval; r_b and r_c for half of it
	w.turn(context.Background())
	age(w.interval / 2) // r_b and r_c have run for the interval, checked by the list half of it ago
	w.turn(context.Background())
	age(w.interval)
	w.turn(context.Background())
	perRun := 0
	for _, id := range []string{"r_a", "r_b", "r_c"} {
		perRun += gets(e, "/v1/actions/runs/"+id)
	}
	if lists := gets(e, "/v1/actions/runs"); lists != 2 || perRun != 0 {
		t.Fatalf("%d list requests and %d GETs of single runs over two intervals, want 2 and 0", lists, perRun)
	}
}

// BenchmarkRunContext is the context a run's command runs under and its watch, as
// runCommand makes them: one context serves the lease and Port.
func BenchmarkRunContext(b *testing.B) {
	w := newPortWatch(nil, time.Minute, zap.NewNop())
	work, stop := context.WithCancel(context.Background())
	defer stop()
	b.ReportAllocs()
	for b.Loop() {
		ctx, cancel := context.WithCancelCause(work)
		watched := w.watch(cancel, "r_bench", nil, false, zap.NewNop(), time.Now(), time.Time{})
		_ = ctx.Done()
		w.unwatch(watched)
		cancel(nil)
	}
}

// handoverLease's handover is its own context, as a partition's is.
type handoverLease struct {
	ownLease
	h context.Context
}

func (l handoverLease) handover() context.Context { return l.h }

// BenchmarkUntilHandover is the context admit waits for a slot under, as a run of the
// topic has it: ended by the work, the first signal and the partition's handover.
func BenchmarkUntilHandover(b *testing.B) {
	stop, stopStop := context.WithCancel(context.Background())
	defer stopStop()
	handover, stopHandover := context.WithCancel(context.Background())
	defer stopHandover()
	r := &run{stop: stop, work: context.Background(), lease: handoverLease{h: handover}}
	b.ReportAllocs()
	for b.Loop() {
		bound := r.untilHandover(r.work)
		_ = bound.ctx.Done()
		bound.end()
	}
}

// The context ends with the first of its sources, with that source's cause.
func TestUntilHandoverCause(t *testing.T) {
	why := errors.New("second signal")
	for _, tc := range []struct {
		name string
		end  func(stop, handover context.CancelCauseFunc)
		want error
	}{
		{"signal", func(stop, _ context.CancelCauseFunc) { stop(why) }, why},
		{"handover", func(_, handover context.CancelCauseFunc) { handover(nil) }, errHandedOver},
	} {
		stop, cancelStop := context.WithCancelCause(context.Background())
		handover, cancelHandover := context.WithCancelCause(context.Background())
		r := &run{stop: stop, lease: handoverLease{h: handover}}
		bound := r.untilHandover(context.Background())
		tc.end(cancelStop, cancelHandover)
		select {
		case <-bound.ctx.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the context did not end", tc.name)
		}
		if got := context.Cause(bound.ctx); got != tc.want {
			t.Errorf("%s: cause %v, want %v", tc.name, got, tc.want)
		}
		bound.end()
		cancelStop(nil)
		cancelHandover(nil)
	}
}

// checkFirst asks Port through checker after calling first (once per turn's run).
type checkFirst struct {
	checker
	first func(id string)
}

func (c checkFirst) CheckRun(ctx context.Context, id string) (portapi.Run, error) {
	c.first(id)
	return c.checker.CheckRun(ctx, id)
}

// A run whose command ends while a turn of the watch asks about another (a request at the
// lowest priority of the budget may wait long) is not asked about once it is unwatched: its
// closing is what Port hears of it.
func TestPortWatchAsksNoRunUnwatchedMeanwhile(t *testing.T) {
	e, api, w := newTestWatch(t)
	w.listOff = true // one GET per run
	runs := map[string]*watched{}
	ended := ""
	// The first run asked about: the other's command ends as it is asked.
	first := func(id string) {
		if ended != "" {
			return
		}
		for other, r := range runs {
			if other != id {
				ended = other
				w.unwatch(r)
			}
		}
	}
	for _, id := range []string{"r_a", "r_b"} {
		e.RegisterRun(id, "deploy")
		_, cancel := context.WithCancelCause(context.Background())
		t.Cleanup(func() { cancel(nil) })
		runs[id] = w.watch(cancel, id, checkFirst{api, first}, false, zap.NewNop(), time.Now().Add(-w.interval), time.Time{})
	}
	w.turn(context.Background())
	if ended == "" || gets(e, "/v1/actions/runs/r_a")+gets(e, "/v1/actions/runs/r_b") != 1 {
		t.Fatalf("%d GETs of r_a, %d of r_b, want 1 in all: %q was unwatched before it was asked about",
			gets(e, "/v1/actions/runs/r_a"), gets(e, "/v1/actions/runs/r_b"), ended)
	}
}

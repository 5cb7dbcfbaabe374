package reporter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/portapi"
)

// blockingAPI holds every AppendLog until released, like a Port that does not answer.
type blockingAPI struct {
	entered chan struct{} // gets a value when an AppendLog starts
	release chan struct{}

	mu     sync.Mutex
	logs   []string
	closes []portapi.Closing
}

func newBlockingAPI() *blockingAPI {
	return &blockingAPI{entered: make(chan struct{}, 1000), release: make(chan struct{})}
}

func (a *blockingAPI) AppendLog(ctx context.Context, _, message string) error {
	a.entered <- struct{}{}
	select {
	case <-a.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.logs = append(a.logs, message)
	return nil
}

func (a *blockingAPI) CloseRun(_ context.Context, _ string, cl portapi.Closing) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closes = append(a.closes, cl)
	return false, nil
}

func (a *blockingAPI) PatchRun(context.Context, string, portapi.RunPatch) error { return nil }

// The fakes' turn comes at once: they take what to send and send it as AppendLog/PatchRun.
func (a *blockingAPI) AppendLogFrom(ctx context.Context, id string, _ <-chan struct{}, take func() (string, bool)) (bool, error) {
	return sendTaken(take, func(m string) error { return a.AppendLog(ctx, id, m) })
}

func (a *blockingAPI) PatchRunFrom(ctx context.Context, id string, _ <-chan struct{}, take func() (portapi.RunPatch, bool)) (bool, error) {
	return sendTaken(take, func(p portapi.RunPatch) error { return a.PatchRun(ctx, id, p) })
}

func sendTaken[T any](take func() (T, bool), send func(T) error) (bool, error) {
	v, ok := take()
	if !ok {
		return false, nil
	}
	return true, send(v)
}

func TestWriteNeverBlocks(t *testing.T) {
	api := newBlockingAPI()
	rep := New(api, Options{FlushInterval: time.Millisecond, MaxBatchBytes: 4096, MaxBytesPerRun: 1 << 20})
	rl := rep.Start(context.Background(), "r_slow", nil)
	write(t, rl, "first\n")
	<-api.entered // the sender is now stuck in a request to Port

	// Several MB while Port does not answer: every Write returns, in this goroutine, before
	// the request is released. A blocking Write would hang the test here.
	chunk := []byte(strings.Repeat(strings.Repeat("y", 99)+"\n", 640)) // 64,000 bytes
	for range 100 {
		if _, err := rl.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	close(api.release)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := rl.Close(ctx, Outcome{Success: true}); err != nil {
		t.Fatal(err)
	}
	api.mu.Lock()
	defer api.mu.Unlock()
	if len(api.closes) != 1 || !strings.Contains(api.closes[0].Message, "bytes of output dropped") {
		t.Fatalf("closes %d, last message %.200q", len(api.closes), api.closes)
	}
	var total int
	for _, m := range append(api.logs, api.closes[0].Message) {
		total += len(m) + 1
	}
	if total < 1<<20-200 || total > 1<<20+200 {
		t.Fatalf("%d bytes reached the API, want MaxBytesPerRun and the notice", total)
	}
}

func TestCloseHonoursContext(t *testing.T) {
	api := newBlockingAPI()
	rl := New(api, Options{FlushInterval: time.Millisecond}).Start(context.Background(), "r_stuck", nil)
	write(t, rl, "stuck\n")
	<-api.entered
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := rl.Close(ctx, Outcome{Success: true}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want the context's error", err)
	}
	select {
	case <-rl.done: // the sender is gone, not leaked
	default:
		t.Fatal("the sender is still running after Close gave up")
	}
	// A later Close with time to spare closes the run, once.
	close(api.release)
	ctx2, cancel2 := context.WithTimeout(context.Background(), waitLimit)
	defer cancel2()
	if err := rl.Close(ctx2, Outcome{Success: true}); err != nil {
		t.Fatal(err)
	}
	if err := rl.Close(ctx2, Outcome{Success: true}); err != nil {
		t.Fatal(err)
	}
	api.mu.Lock()
	defer api.mu.Unlock()
	if len(api.closes) != 1 {
		t.Fatalf("%d closing requests, want 1", len(api.closes))
	}
}

func TestPortFailingForAWhile(t *testing.T) {
	v := newEnv(t, func(o *portapi.Options) {
		o.BaseBackoff, o.MaxBackoff = time.Millisecond, 10*time.Millisecond
	})
	id := v.run("r_5xx")
	v.e.FailNext(5, 503)
	rep := New(v.api, Options{FlushInterval: 5 * time.Millisecond, MaxBatchBytes: 256})
	rl := rep.Start(context.Background(), id, nil)
	var want []string
	for i := range 50 {
		line := fmt.Sprintf("line %d", i)
		want = append(want, line)
		write(t, rl, line+"\n")
	}
	write(t, rl, "::port-link::https://ci.example/x\n")
	closeRun(t, rl, Outcome{Success: false, Label: "exit code 1", Summary: "bye"})
	s := checkClosedOnce(t, v, id, "FAILURE", "exit code 1")
	equalLines(t, logLines(s), append(want, "bye"))
	if len(s.Link) != 1 {
		t.Fatalf("links %q", s.Link)
	}
	var failed int
	for _, r := range v.runRequests(id) {
		if r.Status == 503 {
			failed++
		}
	}
	if failed != 5 {
		t.Fatalf("%d requests answered 503, want 5", failed)
	}
}

func TestPortClosedRunStopsSending(t *testing.T) {
	v := newEnv(t, nil)
	id := v.run("r_gone")
	// Someone else (another agent, a user) ends the run first.
	other := New(v.api, Options{}).Start(context.Background(), id, nil)
	closeRun(t, other, Outcome{Success: false, Label: "cancelled"})

	rl := New(v.api, Options{FlushInterval: time.Millisecond}).Start(context.Background(), id, nil)
	write(t, rl, "late line\n")
	closeRun(t, rl, Outcome{Success: true}) // counts as closed
	s := v.state(t, id)
	if s.Terminations != 1 || s.Status != "FAILURE" {
		t.Fatalf("terminations %d status %s", s.Terminations, s.Status)
	}
}

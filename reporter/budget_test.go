package reporter

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/portapi"
)

// enteringAPI is the real client, telling the test when the sender starts waiting for a
// request's turn.
type enteringAPI struct {
	*portapi.Client
	entered chan string
}

func (a enteringAPI) AppendLogFrom(ctx context.Context, id string, abandon <-chan struct{}, take func() (string, bool)) (bool, error) {
	a.entered <- "log"
	return a.Client.AppendLogFrom(ctx, id, abandon, take)
}

func (a enteringAPI) PatchRunFrom(ctx context.Context, id string, abandon <-chan struct{}, take func() (portapi.RunPatch, bool)) (bool, error) {
	a.entered <- "patch"
	return a.Client.PatchRunFrom(ctx, id, abandon, take)
}

// tightEnv is a Port whose budget gives this client one request every 2s: the token used
// the only one there was, so the next request waits.
func tightEnv(t *testing.T) (*env, enteringAPI) {
	v := newEnv(t, func(o *portapi.Options) { o.RequestsPerSecond = 0.5 })
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if _, err := v.api.Token(ctx); err != nil {
		t.Fatal(err)
	}
	return v, enteringAPI{Client: v.api, entered: make(chan string, 100)}
}

func entered(t *testing.T, api enteringAPI, want string) {
	t.Helper()
	select {
	case got := <-api.entered:
		if got != want {
			t.Fatalf("the sender waits for a %s request, want %s", got, want)
		}
	case <-time.After(waitLimit):
		t.Fatalf("the sender never asked for a %s request", want)
	}
}

// A run that ends while its first batch waits for Port's budget still costs one request:
// the waiting batch gives up and its lines go with the closing.
func TestBudgetHeldBatchGoesWithTheClosing(t *testing.T) {
	v, api := tightEnv(t)
	id := v.run("r_held")
	rl := New(api, Options{FlushInterval: 10 * time.Millisecond}).Start(context.Background(), id, nil)
	write(t, rl, "one\n")
	entered(t, api, "log") // the batch is due and waits for its turn
	write(t, rl, "two\n")
	closeRun(t, rl, Outcome{Success: true, Summary: "done"})
	if n := len(v.runRequests(id)); n != 1 {
		t.Fatalf("%d requests, want 1: the closing with every line", n)
	}
	s := checkClosedOnce(t, v, id, "SUCCESS", "")
	equalLines(t, logLines(s), []string{"one", "two", "done"})
}

// While a batch waits for its turn, the lines that come join it: one request, not two.
func TestBudgetHeldBatchGrows(t *testing.T) {
	v, api := tightEnv(t)
	id := v.run("r_grow")
	rl := New(api, Options{FlushInterval: 10 * time.Millisecond}).Start(context.Background(), id, nil)
	var want []string
	for i := range 50 {
		line := fmt.Sprintf("line %d", i)
		want = append(want, line)
		write(t, rl, line+"\n")
		if i == 0 {
			entered(t, api, "log")
		}
	}
	s := v.waitRun(t, id, "the batch", func(s emulator.RunState) bool { return len(s.Logs) > 0 })
	if len(s.Logs) != 1 {
		t.Fatalf("%d log requests, want 1", len(s.Logs))
	}
	equalLines(t, logLines(s), want)
	closeRun(t, rl, Outcome{Success: true})
	checkClosedOnce(t, v, id, "SUCCESS", "")
}

// Workflow commands that come while a PATCH waits coalesce into it, and every link of the
// run travels in each PATCH (Port replaces the list).
func TestBudgetHeldPatchCoalesces(t *testing.T) {
	v, api := tightEnv(t)
	id := v.run("r_patch")
	rl := New(api, Options{}).Start(context.Background(), id, nil)
	write(t, rl, "::port-link::https://ci.example/1\n")
	entered(t, api, "patch")
	write(t, rl, "::port-link::https://ci.example/2\n::port-summary::Built\n::port-link::https://ci.example/3\n")
	patchCount := func() (n int) {
		for _, r := range v.runRequests(id) {
			if r.Method == "PATCH" {
				n++
			}
		}
		return n
	}
	// The run's state changes before the emulator records the request: wait for both.
	s := v.waitRun(t, id, "the patch", func(s emulator.RunState) bool { return len(s.Link) > 0 && patchCount() > 0 })
	patches := patchCount()
	if patches != 1 || strings.Join(s.Link, " ") != "https://ci.example/1 https://ci.example/2 https://ci.example/3" || s.Summary != "Built" {
		t.Fatalf("%d PATCHes, links %q, summary %q; want one with all three links", patches, s.Link, s.Summary)
	}
	write(t, rl, "::port-link::https://ci.example/4\n")
	closeRun(t, rl, Outcome{Success: true})
	s = checkClosedOnce(t, v, id, "SUCCESS", "")
	if len(s.Link) != 4 {
		t.Fatalf("links after the second PATCH %q, want all four", s.Link)
	}
}

// A batch whose request fails before it takes anything (Port refuses the agent's
// credentials, so there is no token) is dropped like any failed batch: the sender does not
// ask for a token again and again for it.
func TestBatchWithoutTokenIsDroppedOnce(t *testing.T) {
	v := newEnv(t, func(o *portapi.Options) { o.ClientSecret = "wrong" })
	id := v.run("r_notoken")
	rl := New(v.api, Options{FlushInterval: time.Millisecond}).Start(context.Background(), id, nil)
	write(t, rl, "lost\n")
	deadline := time.Now().Add(waitLimit)
	for {
		rl.mu.Lock()
		pending := len(rl.batch.lines)
		rl.mu.Unlock()
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the batch is never given up")
		}
		time.Sleep(time.Millisecond)
	}
	auths := func() (n int) {
		for _, r := range v.e.Requests() {
			if strings.HasSuffix(r.Path, "/auth/access_token") {
				n++
			}
		}
		return n
	}
	if n := auths(); n != 1 {
		t.Fatalf("%d token requests for one batch, want 1", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := rl.Close(ctx, Outcome{Success: true}); err == nil {
		t.Fatal("Close without a token succeeded")
	}
}

package polling_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/portapi"
	"github.com/port-runner/port-runner/polling"
)

// inMemory serves the client's requests with the emulator's handler in the same process:
// the real client and the real emulator, with no sockets, so the test can run inside a
// synctest bubble where time is virtual.
type inMemory struct{ h http.Handler }

func (m inMemory) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	m.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

func port(t *testing.T) (*emulator.Emulator, *portapi.Client) {
	t.Helper()
	e := emulator.New(emulator.Options{ClientID: "c", ClientSecret: "s-0123456789abcdef0123456789abcdef", Delivery: emulator.DeliveryPolling})
	c, err := portapi.New(portapi.Options{BaseURL: "http://port.invalid", ClientID: "c", ClientSecret: "s-0123456789abcdef0123456789abcdef",
		HTTPClient: &http.Client{Transport: inMemory{e}}})
	if err != nil {
		t.Fatal(err)
	}
	return e, c
}

// claims is every claim request the emulator got, with its limit and time.
func claims(e *emulator.Emulator) (limits []int, at []time.Time) {
	for _, r := range e.Requests() {
		if r.Path != "/v1/actions/runs/claim-pending" && r.Path != "/v1/workflows/runs/claim-pending" {
			continue
		}
		var in struct{ Limit int }
		_ = json.Unmarshal(r.Body, &in)
		limits = append(limits, in.Limit)
		at = append(at, r.At)
	}
	return limits, at
}

// A replica never claims more runs than it has free slots, and claims again at once when
// one frees.
func TestClaimsNeverExceedFreeSlots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, c := port(t)
		for range 10 {
			if _, err := e.CreateRun(context.Background(), "deploy", emulator.CreateRunRequest{}); err != nil {
				t.Fatal(err)
			}
		}
		src := polling.New(polling.Options{API: c, Slots: 3})
		var mu sync.Mutex
		running := map[string]chan struct{}{}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() {
			done <- src.Run(ctx, func(cl polling.Claim) {
				ch := make(chan struct{})
				mu.Lock()
				running[cl.ID] = ch
				mu.Unlock()
				<-ch
			})
		}()
		synctest.Wait()
		claimed := func() int {
			n := 0
			for _, r := range e.Runs() {
				if r.Claims > 0 {
					n++
				}
			}
			return n
		}
		if got := claimed(); got != 3 || src.Held() != 3 {
			t.Fatalf("claimed %d, held %d; want 3 (the free slots)", got, src.Held())
		}
		// One run ends: its slot is claimed for at the same instant, not after a wait.
		before := time.Now()
		mu.Lock()
		for id, ch := range running {
			close(ch)
			delete(running, id)
			break
		}
		mu.Unlock()
		synctest.Wait()
		limits, at := claims(e)
		if got := claimed(); got != 4 || src.Held() != 3 {
			t.Fatalf("after one run ended: claimed %d, held %d; want 4, 3", got, src.Held())
		}
		if last := at[len(at)-1]; !last.Equal(before) {
			t.Errorf("the freed slot was claimed for %s after it freed, want at once", last.Sub(before))
		}
		for i, l := range limits {
			if l > 3 {
				t.Errorf("claim %d asked for %d runs with 3 slots", i, l)
			}
		}
		cancel()
		mu.Lock()
		for _, ch := range running {
			close(ch)
		}
		mu.Unlock()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// An idle replica's claims back off from MinInterval to Interval: its steady rate is one
// claim per Interval (per kind).
func TestIdleClaimsBackOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, c := port(t)
		src := polling.New(polling.Options{API: c, Slots: 8, NodeRuns: true, MinInterval: time.Second, Interval: 10 * time.Second})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- src.Run(ctx, func(polling.Claim) {}) }()
		start := time.Now()
		time.Sleep(10 * time.Minute)
		cancel()
		<-done
		_, at := claims(e)
		// Waits 1, 2, 4, 8, then 10s: 5 cycles in the first 25s, then one per 10s; two
		// claims (runs, node runs) a cycle.
		cycles := 5 + int((10*time.Minute-25*time.Second)/(10*time.Second))
		if len(at) != 2*cycles && len(at) != 2*(cycles+1) {
			t.Errorf("%d claims in 10 idle minutes, want %d (two kinds, %d cycles)", len(at), 2*cycles, cycles)
		}
		var lastMinute int
		for _, a := range at {
			if a.Sub(start) >= 9*time.Minute {
				lastMinute++
			}
		}
		if lastMinute > 12 {
			t.Errorf("%d claims in the last idle minute, want at most 12", lastMinute)
		}
	})
}

// A failing Port is asked again with a growing backoff, not in a tight loop.
func TestClaimErrorsBackOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, c := port(t)
		e.SetDown(true)
		src := polling.New(polling.Options{API: c, Slots: 1})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- src.Run(ctx, func(polling.Claim) {}) }()
		time.Sleep(10 * time.Minute)
		cancel()
		<-done
		if _, at := claims(e); len(at) > 200 {
			t.Errorf("%d claim attempts in 10 minutes of outage, want a backoff", len(at))
		}
	})
}

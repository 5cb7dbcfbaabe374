package emulator

import (
	"testing"
	"time"
)

// A budget change takes effect with the first request of a later window, and says when:
// the start of that window, not the moment SetBudget was called.
func TestBudgetChangedIsTheStartOfItsFirstWindow(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Budget = 100; o.BudgetWindow = 10 * time.Second })
	f.clk.Add(3 * time.Second)
	tok := f.token(t)
	if at := f.e.BudgetChanged(); !at.IsZero() {
		t.Fatalf("BudgetChanged() = %v before any change", at)
	}
	f.e.SetBudget(5, 10*time.Second)
	want(t, f.do(t, "GET", "/v1/actions/runs/r_none", tok, nil), 404, "")
	if at := f.e.BudgetChanged(); !at.IsZero() {
		t.Fatalf("BudgetChanged() = %v while the old budget's window lasts", at)
	}
	// Two quiet windows later: the change starts with the window of the next request.
	f.clk.Add(25 * time.Second)
	r := f.do(t, "GET", "/v1/actions/runs/r_none", tok, nil)
	if r.header.Get("x-ratelimit-limit") != "5" {
		t.Fatalf("limit %q after the change", r.header.Get("x-ratelimit-limit"))
	}
	if at, want := f.e.BudgetChanged(), f.clk.Now().Truncate(10*time.Second); !at.Equal(want) {
		t.Fatalf("BudgetChanged() = %v, want the start of its first window %v", at, want)
	}
}

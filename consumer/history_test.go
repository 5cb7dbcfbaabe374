package consumer

import (
	"fmt"
	"math/rand"
	"testing"
	"time"
)

// FuzzHistoryEncodingCarriedOn: the history's encoding carried on from the last one (runs
// put in front of it, the oldest let go) is what writing it anew gives, whatever runs were
// added, forgotten, or evicted between two commits and whatever room each commit leaves.
func FuzzHistoryEncodingCarriedOn(f *testing.F) {
	for seed := range int64(8) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, seed int64) {
		r := rand.New(rand.NewSource(seed))
		h := newHistory()
		h.known = true
		budgets := []int{maxHistoryBytes, maxHistoryBytes, 300, 25, 0}
		at := int64(1_700_000_000)
		for step := range 600 {
			switch op := r.Intn(20); {
			case op < 16:
				for range 1 + r.Intn(4) {
					at += r.Int63n(5) - 1
					h.addUnix(fmt.Sprintf("r_%x", r.Int63n(1<<(4*(2+r.Intn(14))))), at)
				}
			case op < 17:
				h.forgetBefore(time.Unix(at-r.Int63n(30), 0))
			case op < 18:
				for range 80 + r.Intn(maxHistoryPrepend) {
					at++
					h.addUnix(fmt.Sprintf("r_%d", at), at)
				}
			}
			budget := budgets[r.Intn(len(budgets))]
			h.enc.update(h, budget)
			want := encodeHistory(h, budget, nil)
			if got := h.enc; string(got.runs) != string(want.runs) || got.cover != want.cover || got.n != want.n {
				t.Fatalf("step %d, budget %d: carried on %q (cover %d, %d runs), anew %q (cover %d, %d runs)",
					step, budget, got.runs, got.cover, got.n, want.runs, want.cover, want.n)
			}
		}
	})
}

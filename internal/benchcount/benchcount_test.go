package benchcount

import (
	"sync"
	"testing"
)

func TestFewestGoroutines(t *testing.T) {
	if Goroutines() == 0 {
		t.Fatal("no goroutines counted: the runtime's metric is missing")
	}
	got := FewestGoroutines(3, func() {
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {})
		}
		wg.Wait()
	})
	if got != 2 {
		t.Fatalf("two goroutines counted as %d", got)
	}
	if got := FewestGoroutines(3, func() {}); got != 0 {
		t.Fatalf("no goroutine counted as %d", got)
	}
}

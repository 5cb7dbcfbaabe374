package executor

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestPoolReserveTakesWhatIsFree(t *testing.T) {
	p := NewPool(2, nil) // 2 running, 4 admitted
	ctx := context.Background()
	n, err := p.Reserve(ctx, 3)
	if err != nil || n != 3 {
		t.Fatalf("Reserve(3) = %d, %v; want 3", n, err)
	}
	n, err = p.Reserve(ctx, 3)
	if err != nil || n != 1 {
		t.Fatalf("second Reserve(3) = %d, %v; want the 1 left", n, err)
	}
	if p.Admitted() != 4 {
		t.Fatalf("Admitted = %d, want 4", p.Admitted())
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := p.Reserve(cctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Reserve on a full pool = %v, want it to wait until ctx ends", err)
	}
	got := make(chan int)
	go func() { n, _ := p.Reserve(ctx, 8); got <- n }()
	p.Release(2)
	if n := <-got; n < 1 || n > 2 {
		t.Fatalf("Reserve after Release(2) took %d", n)
	}
}

func TestPoolPerActionLimit(t *testing.T) {
	p := NewPool(8, map[string]int{"slow": 1, "free": 0})
	ctx := context.Background()
	release, err := p.Acquire(ctx, "slow")
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := p.Acquire(cctx, "slow"); err == nil {
		t.Fatal("second slot of an action limited to 1")
	}
	for i := 0; i < 10; i++ { // 0 means only the global limit
		r, err := p.Acquire(ctx, "free")
		if err != nil {
			t.Fatal(err)
		}
		r()
	}
	release()
	if r, err := p.Acquire(ctx, "slow"); err != nil {
		t.Fatalf("slot not given back: %v", err)
	} else {
		r()
	}
}

// TestPoolQueuedRunsHoldNoRunningSlot: runs waiting for their action's slot leave the
// running slots to other actions.
func TestPoolQueuedRunsHoldNoRunningSlot(t *testing.T) {
	p := NewPool(2, map[string]int{"slow": 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	release, err := p.Acquire(ctx, "slow")
	if err != nil {
		t.Fatal(err)
	}
	queued := make(chan error, 3)
	for range 3 {
		go func() {
			r, err := p.Acquire(ctx, "slow")
			if err == nil {
				r()
			}
			queued <- err
		}()
	}
	other, err := p.Acquire(ctx, "other") // the second running slot is free for it
	if err != nil {
		t.Fatal(err)
	}
	if p.InUse() != 2 {
		t.Fatalf("InUse = %d, want 2", p.InUse())
	}
	other()
	release()
	for range 3 {
		if err := <-queued; err != nil {
			t.Fatal(err)
		}
	}
	if p.InUse() != 0 {
		t.Fatalf("InUse = %d after every release", p.InUse())
	}
}

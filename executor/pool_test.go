package executor

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestPoolReserveTakesWhatIsFree(t *testing.T) {
	p := NewPool(4, nil)
	ctx := context.Background()
	n, err := p.Reserve(ctx, 3)
	if err != nil || n != 3 {
		t.Fatalf("Reserve(3) = %d, %v; want 3", n, err)
	}
	n, err = p.Reserve(ctx, 3)
	if err != nil || n != 1 {
		t.Fatalf("second Reserve(3) = %d, %v; want the 1 left", n, err)
	}
	if p.InUse() != 4 {
		t.Fatalf("InUse = %d, want 4", p.InUse())
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
	release, err := p.AcquireAction(ctx, "slow")
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := p.AcquireAction(cctx, "slow"); err == nil {
		t.Fatal("second slot of an action limited to 1")
	}
	for i := 0; i < 10; i++ { // 0 means only the global limit
		if _, err := p.AcquireAction(ctx, "free"); err != nil {
			t.Fatal(err)
		}
	}
	release()
	if r, err := p.AcquireAction(ctx, "slow"); err != nil {
		t.Fatalf("slot not given back: %v", err)
	} else {
		r()
	}
}

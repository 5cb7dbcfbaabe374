package backoff

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDelayBounds(t *testing.T) {
	p := Policy{Base: 10 * time.Millisecond, Max: 80 * time.Millisecond}
	for n := 0; n < 70; n++ {
		ceil := min(10*time.Millisecond<<min(n, 10), 80*time.Millisecond)
		for i := 0; i < 50; i++ {
			if d := p.Delay(n, 0); d < 0 || d > ceil {
				t.Fatalf("Delay(%d) = %v, want within [0, %v]", n, d, ceil)
			}
		}
		if d := p.Delay(n, time.Second); d != time.Second {
			t.Fatalf("Delay with a hint = %v, want the hint", d)
		}
	}
}

func TestZeroPolicyDefaults(t *testing.T) {
	if d := (Policy{}).Delay(20, 0); d > 30*time.Second {
		t.Fatalf("Delay = %v, over the 30s default ceiling", d)
	}
	// Max below Base: Base wins, so a misconfiguration never panics rand.
	if d := (Policy{Base: time.Second, Max: time.Millisecond}).Delay(0, 0); d > time.Second {
		t.Fatalf("Delay = %v", d)
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep = %v", err)
	}
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatal(err)
	}
}

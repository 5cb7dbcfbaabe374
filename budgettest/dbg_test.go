package budgettest

import (
	"testing"
	"time"
)

func log429s(t *testing.T, o *org, period time.Duration) {
	for _, r := range o.emu.Requests() {
		if r.Status == 429 {
			t.Logf("429 %s %s at +%v in window", r.Method, r.Path, r.At.Sub(r.At.Truncate(period)))
		}
	}
}

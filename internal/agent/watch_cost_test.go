package agent

import (
	"slices"
	"testing"
	"time"
)

// What a run handed over under a lease costs its new owner (await): Port lookups at the
// lowest priority for as long as the run lasts, and the time from the run's end to the new
// owner seeing it (then its commit passes the run). The schedule is watchRetry's, jitter
// and all, over 10,000 simulated watches per run length (BENCHMARKS.md "Leases"):
//
//	go test -run TestWatchCost -v ./internal/agent/
func TestWatchCost(t *testing.T) {
	const watches = 10000
	for _, c := range []struct {
		lasts          time.Duration // from the handover to the run's end in Port
		maxGets        float64       // per run, on average
		maxLag, maxP99 time.Duration // from the run's end to the new owner seeing it
	}{
		// The lag is at most one wait: watchRetry.Max, 2m.
		{30 * time.Second, 8, 30 * time.Second, 2 * time.Minute},
		{5 * time.Minute, 13, 60 * time.Second, 2 * time.Minute},
		{time.Hour, 72, 60 * time.Second, 2 * time.Minute}, // about one a minute
	} {
		gets, lags := 0, make([]time.Duration, 0, watches)
		for range watches {
			var at time.Duration
			for attempt := 0; ; attempt++ {
				gets++ // a lookup at at
				if at >= c.lasts {
					lags = append(lags, at-c.lasts)
					break
				}
				at += watchRetry.Delay(attempt, 0)
			}
		}
		mean := float64(gets) / watches
		var sum time.Duration
		for _, l := range lags {
			sum += l
		}
		avgLag, p99 := sum/watches, percentile(lags, 0.99)
		t.Logf("run lasting %s after its handover: %.1f lookups, %.2f a minute; its end seen %s later on average, p99 %s",
			c.lasts, mean, mean/c.lasts.Minutes(), avgLag.Round(100*time.Millisecond), p99.Round(100*time.Millisecond))
		if mean > c.maxGets || avgLag > c.maxLag || p99 > c.maxP99 {
			t.Errorf("run lasting %s: %.1f lookups (max %.0f), lag %s (max %s), p99 %s (max %s)",
				c.lasts, mean, c.maxGets, avgLag, c.maxLag, p99, c.maxP99)
		}
	}
}

func percentile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1))]
}

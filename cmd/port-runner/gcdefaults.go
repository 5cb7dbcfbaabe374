package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// The agent's garbage collector when the environment does not set it (README "Memory and
// the garbage collector"). Go's default collects when the heap has grown by as much as is
// live: a quiet agent's 2 MiB live heap is collected every 2 MiB allocated, about every 40
// runs. The agent lets it grow by at least minGrowth between collections (GOGC up to
// maxGCPercent while the live heap is small) and by Go's 100% once the live heap is larger,
// so that a large heap (a thousand runs at once, a backlog) is no larger than at Go's
// default.
const (
	minGrowth    = 12 << 20
	maxGCPercent = 400
	// In a container with a memory limit, the soft memory limit is limitTenths tenths of it:
	// a backstop that makes the collector work harder only near the container's OOM kill,
	// never a budget. The commands share the container's memory, so the agent cannot know
	// its share; a limit below what the agent holds live (a thousand runs, ~32 MB of heap and stacks) runs the
	// collector back to back, up to half the CPU, and frees nothing.
	limitTenths = 9
)

// gcSettings is what the agent sets: tune, the GC percent after each collection; limit > 0,
// a soft memory limit.
type gcSettings struct {
	tune  bool
	limit int64 // bytes
}

// gcDefaults is the setting for an agent whose environment is getenv and whose container
// (cgroup) allows memoryMax bytes (0: no limit). GOGC set leaves both to the environment: it
// gets Go's own behaviour for that value; GOMEMLIMIT set is the limit instead of the
// container's share.
func gcDefaults(getenv func(string) string, memoryMax int64) gcSettings {
	if getenv("GOGC") != "" {
		return gcSettings{}
	}
	s := gcSettings{tune: true}
	if getenv("GOMEMLIMIT") == "" && memoryMax > 0 {
		s.limit = memoryMax / 10 * limitTenths
	}
	return s
}

// gcPercentFor is the GC percent that lets a heap of live bytes grow by at least minGrowth,
// between Go's default 100 and maxGCPercent.
func gcPercentFor(live uint64) int {
	if live == 0 {
		return maxGCPercent
	}
	return int(min(max(minGrowth*100/live, 100), maxGCPercent))
}

// apply sets s in the runtime; stop ends the tuning (the process's collector keeps the
// percent last set).
func (s gcSettings) apply() (stop func()) {
	if s.limit > 0 {
		debug.SetMemoryLimit(s.limit)
	}
	if !s.tune {
		return func() {}
	}
	t := &gcTuner{samples: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}, percent: -1}
	t.tune()
	t.arm()
	return func() { t.stopped.Store(true) }
}

// gcTuner sets the GC percent from the live heap after each collection: a cleanup of an
// object made unreachable at once runs after the cycle that found it so, and arms the next.
// It has no goroutine of its own: cleanups run on the runtime's.
type gcTuner struct {
	stopped atomic.Bool
	// One cleanup at a time arms the next; the lock is for the race detector's sake, which
	// does not see that a cleanup comes after the code that armed it.
	mu      sync.Mutex
	samples []metrics.Sample
	percent int
}

// cycleMark is what a cleanup is attached to: large enough not to be a tiny allocation,
// which may share its block with live objects and never be collected.
type cycleMark struct{ _ [16]byte }

func (t *gcTuner) arm() {
	runtime.AddCleanup(new(cycleMark), func(t *gcTuner) {
		if t.stopped.Load() {
			return
		}
		t.tune()
		t.arm()
	}, t)
}

func (t *gcTuner) tune() {
	t.mu.Lock()
	defer t.mu.Unlock()
	metrics.Read(t.samples)
	if t.samples[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	if p := gcPercentFor(t.samples[0].Value.Uint64()); p != t.percent {
		t.percent = p
		debug.SetGCPercent(p)
	}
}

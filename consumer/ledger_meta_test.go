package consumer

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"
)

// FuzzLedgerCommitSaysItsWindow: what a partition's commit says, gathered from its window
// in offset order with no map built, is what encodeProgress writes of the same marks put
// in sets (progressOf), for any earlier owner's progress, any order of takes and finishes,
// and at a handover; and a take fits exactly when that progress's starts fit.
func FuzzLedgerCommitSaysItsWindow(f *testing.F) {
	for seed := range int64(4) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, seed int64) {
		r := rand.New(rand.NewSource(seed))
		l, pl, base := randomLedger(r)
		mine := Lease{Holder: "me-" + strings.Repeat("m", r.Intn(200)), Bound: time.Hour}
		next, live := base, []int64{}
		for range 200 {
			switch op := r.Intn(10); {
			case op < 4:
				next += 1 + int64(r.Intn(3))/2
				if _, ok, _ := l.add(rec("runs", 0, next)); ok {
					live = append(live, next)
				}
			case op < 7 && len(live) > 0:
				l.markStarted(rec("runs", 0, live[r.Intn(len(live))]), pl, mine)
			case op < 9 && len(live) > 0:
				i := r.Intn(len(live))
				l.finish(rec("runs", 0, live[i]), pl)
				live = append(live[:i], live[i+1:]...)
			default:
				l.handled(pl, fmt.Sprintf("r_%d", r.Int63()), time.Unix(r.Int63n(1<<31), 0))
			}
			for _, h := range []*Lease{nil, &mine} {
				if s, ok := pl.snapshot(h); ok {
					if want := encodeProgress(s.offset.Offset, progressOf(pl, h)); s.meta != want {
						t.Fatalf("commit says %q\nof its marks in sets %q", s.meta, want)
					}
				}
			}
			if b, ok := pl.base(); ok && pl.fits(mine) != (&metaWriter{}).coreFits(b.Offset, marksOf(progressOf(pl, &mine)).started) {
				t.Fatal("a take fits otherwise than its marks in sets")
			}
		}
	})
}

// randomLedger is a ledger of one partition an earlier owner committed random progress for.
func randomLedger(r *rand.Rand) (*ledger, *partitionLedger, int64) {
	base := r.Int63n(1000)
	prior := emptyProgress()
	holders, span := 1+r.Intn(40), 1+r.Int63n(3000)
	for range r.Intn(150) {
		off := base + r.Int63n(span)
		prior.started[off] = true
		if r.Intn(2) == 0 {
			prior.leases[off] = Lease{Holder: fmt.Sprintf("h%d-%s", r.Intn(holders), strings.Repeat("y", r.Intn(80))), Bound: time.Hour}
		}
	}
	for range r.Intn(1000) {
		prior.finished[base+r.Int63n(span)] = true
	}
	for range r.Intn(4) {
		first := base + r.Int63n(span)
		prior.unknown = append(prior.unknown, offsetRange{first, first + r.Int63n(40)})
	}
	a := assigned{offset: base, progress: prior}
	if r.Intn(4) == 0 {
		a.unknownBelow = base + r.Int63n(300)
	}
	l := newLedger(5 * time.Minute)
	l.assign(map[topicPartition]assigned{{"runs", 0}: a})
	return l, l.parts[topicPartition{"runs", 0}], base
}

// progressOf is what pl's commit says, in sets: its window's marks, and what earlier
// owners said of offsets not polled yet.
func progressOf(pl *partitionLedger, handover *Lease) progress {
	p := newProgress()
	for _, e := range pl.inflight {
		switch {
		case e.done:
			p.finished[e.offset] = true
		case e.started:
			p.started[e.offset] = true
			if l, leased := pl.prior.leases[e.offset]; leased && !e.ours {
				p.leases[e.offset] = l
			} else if e.ours && handover != nil {
				p.leases[e.offset] = *handover
			}
		case e.unknown:
			p.unknown = append(p.unknown, offsetRange{e.offset, e.offset})
		}
	}
	for off := range pl.prior.started {
		if off > pl.lastSeen {
			p.started[off] = true
			if l, ok := pl.prior.leases[off]; ok {
				p.leases[off] = l
			}
		}
	}
	for off := range pl.prior.finished {
		if off > pl.lastSeen {
			p.finished[off] = true
		}
	}
	for _, r := range pl.prior.unknown {
		if r.last > pl.lastSeen {
			p.unknown = append(p.unknown, offsetRange{max(r.first, pl.lastSeen+1), r.last})
		}
	}
	if pl.unknownBelow > pl.lastSeen+1 {
		p.unknown = append(p.unknown, offsetRange{pl.lastSeen + 1, pl.unknownBelow - 1})
	}
	p.history = pl.history
	return p
}

// A commit of a long window behind an unfinished run leaves the partition no buffer the
// size of that window: it writes the metadata in buffers it reuses, up to a stream of
// quick runs' needs.
func TestALongWindowLeavesNoLargeBuffers(t *testing.T) {
	l := newLedger(5 * time.Minute)
	assignFresh(l, "runs", 0)
	head := rec("runs", 0, 0)
	l.add(head)
	for off := int64(1); off <= 5000; off++ {
		r := rec("runs", 0, off)
		l.add(r)
		if off%3 != 0 {
			l.finish(r, plOf(l, r))
		}
	}
	pl := plOf(l, head)
	if !pl.fits(Lease{Holder: "me", Bound: time.Hour}) {
		t.Fatal("no room for a take")
	}
	s := commitOf(t, l, "runs", 0)
	if s.offset.Offset != 0 || !strings.Contains(s.meta, " f=1-2,4-5,") {
		t.Fatalf("commit %+v", s)
	}
	for name, c := range map[string]int{"finished": cap(pl.marks.finished), "deltas": cap(pl.meta.deltas), "ranges": cap(pl.meta.ranges)} {
		if c > keptLen {
			t.Errorf("%s kept %d entries", name, c)
		}
	}
}

package consumer

import (
	"bytes"
	"slices"
	"sort"
	"strconv"
)

// encode writes m and h relative to base (the committed offset) in w's buffers, e.g.
// "port-runner/1 s=3,9 f=0-2,4-8 o=.0 h=2s:member-1 c=sbkx2o r=r_a.sbkx3a": base-36 deltas,
// finished offsets as ranges, o= the holder of each started offset ('.': none), h= the
// holders, c= and r= the history. It fits under Kafka's limit (maxMetaBytes) by giving up,
// in this order, what costs only Port lookups: the oldest history (its cover moves on), then
// the highest finished offsets, which become unknown (looked up in Port, never run blind).
// Started offsets and leases are never given up: a run is taken only while they fit
// (coreFits; meta_test.go shows the worst case).
func (w *metaWriter) encode(base int64, m *marks, h history) string {
	w.writeCore(base, m.started)
	core := len(w.buf)
	w.deltas = w.deltas[:0]
	for _, off := range m.finished[sort.Search(len(m.finished), func(i int) bool { return m.finished[i] >= base }):] {
		w.deltas = append(w.deltas, off-base)
	}
	w.ranges = appendRangesOf(w.ranges[:0], w.deltas)
	w.unknown = mergeRanges(appendRelative(w.unknown[:0], base, m.unknown))
	w.writeRanges(core, w.ranges, w.unknown)
	if w.over() {
		w.degradeFinished(core, w.ranges, w.unknown)
	}
	return w.withHistory(h)
}

// coreFits says whether the starts and leases of started fit under Kafka's limit with room
// for the rest at its smallest: every finished and unknown offset given up as one unknown
// range, and the history's cover.
func (w *metaWriter) coreFits(base int64, started []startedRun) bool {
	if !w.writeCore(base, started) {
		return false
	}
	w.writeRanges(len(w.buf), nil, []offsetRange{{0, 1 << 40}})
	return !w.over()
}

// coverBytes is room for " c=" and a time in base 36 (6 digits until the year 5188).
const coverBytes = 16

// degradeFinished keeps the lowest finished ranges that fit after the first core bytes of
// buf, and makes one unknown range of the offsets from the first range given up to the
// last. If the unknown ranges alone do not fit, every finished and unknown offset becomes
// one unknown range.
func (w *metaWriter) degradeFinished(core int, finished, unknown []offsetRange) {
	n := len(finished)
	keeping := func(k int) {
		if k == n {
			w.writeRanges(core, finished, unknown)
			return
		}
		tail := offsetRange{finished[k].first, finished[n-1].last}
		w.writeRanges(core, finished[:k], mergeRanges(append(slices.Clone(unknown), tail)))
	}
	k := sort.Search(n+1, func(k int) bool { keeping(k); return w.over() })
	if k > 0 {
		keeping(k - 1)
		return
	}
	all := append(slices.Clone(unknown), finished...)
	if len(all) == 0 {
		w.buf = w.buf[:core] // (a take waits rather than let the core alone be over: coreFits)
		return
	}
	span := offsetRange{all[0].first, all[0].last}
	for _, r := range all {
		span = offsetRange{min(span.first, r.first), max(span.last, r.last)}
	}
	w.writeRanges(core, nil, []offsetRange{span})
}

// maxHistoryBytes bounds the history a commit carries (r=): its newest runs; older ones are
// looked up in Port by a next owner that meets them again (README "Delivery").
const maxHistoryBytes = 2048

// withHistory adds to buf the history's cover (c=) and as many of its newest runs (r=) as
// fit in maxHistoryBytes and the room left; the cover moves past every run left out. Every
// commit carries it: update writes what changed since the last one.
func (w *metaWriter) withHistory(h history) string {
	if !h.known {
		return string(w.buf)
	}
	budget := max(min(maxMetaBytes-len(w.buf)-coverBytes-len(" r="), maxHistoryBytes), 0)
	enc := h.enc
	if enc == nil {
		enc = &historyEnc{}
	}
	enc.update(h, budget)
	w.buf = strconv.AppendInt(append(w.buf, " c="...), enc.cover, 36)
	if len(enc.runs) > 0 {
		w.buf = append(append(w.buf, " r="...), enc.runs...)
	}
	return string(w.buf)
}

// update makes enc h's newest runs that fit in budget bytes, and the cover that holds
// without the others. Runs added since enc was written go in front of it, and the runs
// written before that still fit stay as they are: a commit goes out for about every run,
// and writing the whole history anew was a third of the ledger's work for each.
func (enc *historyEnc) update(h history, budget int) {
	added := int(h.ver - enc.ver)
	switch {
	case enc.ver == h.ver && enc.budget == budget && enc.runs != nil:
		return
	case enc.runs != nil && enc.budget == budget && h.forgot <= enc.ver && enc.ver < h.ver &&
		added <= maxHistoryPrepend && enc.n+added <= len(h.order):
		for _, e := range h.order[len(h.order)-added:] {
			enc.prepend(e)
		}
		enc.ver, enc.cover = h.ver, h.cover
		if enc.n < len(h.order) {
			enc.cover = max(h.cover, h.order[len(h.order)-1-enc.n].upTo+1)
		}
	default:
		*enc = encodeHistory(h, budget, enc.runs[:0])
	}
}

// maxHistoryPrepend bounds the runs update puts in front of an encoding: past it, writing
// the history anew costs no more.
const maxHistoryPrepend = 64

// prepend puts run e in front of enc's runs, and lets go of the oldest of them that no
// longer fit in its budget.
func (enc *historyEnc) prepend(e historyEntry) {
	var num [16]byte
	ts := strconv.AppendInt(num[:0], e.at, 36)
	size := len(e.id) + 1 + len(ts)
	room := enc.budget - (size + 1) // each run costs its bytes and a separator
	if room < 0 {
		enc.runs, enc.n = enc.runs[:0], 0
		return
	}
	kept := enc.runs
	for len(kept) > 0 && len(kept)+1 > room {
		kept = kept[:max(bytes.LastIndexByte(kept, ','), 0)]
		enc.n--
	}
	shift := size
	if len(kept) > 0 {
		shift++
	}
	runs := slices.Grow(kept, shift)[:len(kept)+shift]
	copy(runs[shift:], runs[:len(kept)])
	copy(runs[copy(runs, e.id):], ".")
	copy(runs[len(e.id)+1:], ts)
	if len(kept) > 0 {
		runs[size] = ','
	}
	enc.runs, enc.n = runs, enc.n+1
}

// encodeHistory writes h's newest runs that fit in budget bytes into runs, and the cover
// that holds without the others.
func encodeHistory(h history, budget int, runs []byte) historyEnc {
	if runs == nil {
		runs = make([]byte, 0, min(budget, 64*len(h.order)))
	}
	e := historyEnc{ver: h.ver, budget: budget, cover: h.cover, runs: runs}
	room := budget
	var num [16]byte
	h.newest(func(id string, at, coverWithout int64) bool {
		ts := strconv.AppendInt(num[:0], at, 36)
		if room -= len(id) + 1 + len(ts) + 1; room < 0 {
			e.cover = coverWithout
			return false
		}
		if len(e.runs) > 0 {
			e.runs = append(e.runs, ',')
		}
		e.runs = append(append(append(e.runs, id...), '.'), ts...)
		e.n++
		return true
	})
	return e
}

package consumer

import (
	"cmp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// encodeProgress writes p relative to base (the committed offset), e.g.
// "port-runner/1 s=3,9 f=0-2,4-8 o=.0 h=2s:member-1 c=sbkx2o r=r_a.sbkx3a": base-36 deltas,
// finished offsets as ranges, o= the holder of each started offset ('.': none), h= the
// holders, c= and r= the history. It fits under Kafka's limit (maxMetaBytes) by giving up,
// in this order, what costs only Port lookups: the oldest history (its cover moves on), then
// the highest finished offsets, which become unknown (looked up in Port, never run blind).
// Started offsets and leases are never given up: a run is taken only while they fit
// (coreFits; meta_test.go shows the worst case).
func encodeProgress(base int64, p progress) string {
	core, _ := coreFields(base, p)
	finished := rangesOf(deltas(base, p.finished))
	unknown := mergeRanges(relativeRanges(base, p.unknown))
	fields := withRanges(core, "f", finished, unknown)
	if over(fields) {
		fields = degradeFinished(core, finished, unknown)
	}
	return fitHistory(fields, p.history)
}

// coreFits says whether p's starts and leases fit under Kafka's limit with room for the
// rest at its smallest: every finished and unknown offset given up as one unknown range,
// and the history's cover.
func coreFits(base int64, p progress) bool {
	core, ok := coreFields(base, p)
	return ok && !over(withRanges(core, "f", nil, []offsetRange{{0, 1 << 40}}))
}

// coreFields is what must always be said: the started offsets and who holds them. ok is
// false when they name more holders than o= can (maxHolders).
func coreFields(base int64, p progress) (fields []string, ok bool) {
	fields = []string{metaPrefix}
	started := deltas(base, p.started)
	if len(started) == 0 {
		return fields, true
	}
	fields = append(fields, "s="+formatRanges(rangesOf(started)))
	var holders []Lease
	index := map[Lease]int{}
	owners := make([]byte, len(started))
	leased := false
	for i, d := range started {
		l, ok := p.leases[base+d]
		if !ok {
			owners[i] = '.'
			continue
		}
		h, seen := index[l]
		if !seen {
			h = len(holders)
			index[l] = h
			holders = append(holders, l)
		}
		if h >= maxHolders {
			return fields, false
		}
		owners[i] = strconv.FormatInt(int64(h), 36)[0]
		leased = true
	}
	if leased {
		fields = append(fields, "o="+string(owners), "h="+formatHolders(holders))
	}
	return fields, true
}

// mergeRanges sorts ranges and joins those that touch or overlap.
func mergeRanges(rs []offsetRange) []offsetRange {
	if len(rs) < 2 {
		return rs
	}
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b offsetRange) int { return cmp.Compare(a.first, b.first) })
	out := rs[:1]
	for _, r := range rs[1:] {
		if last := &out[len(out)-1]; r.first <= last.last+1 {
			last.last = max(last.last, r.last)
		} else {
			out = append(out, r)
		}
	}
	return out
}

func relativeRanges(base int64, rs []offsetRange) []offsetRange {
	var out []offsetRange
	for _, r := range rs {
		if r.last >= base {
			out = append(out, offsetRange{max(r.first, base) - base, r.last - base})
		}
	}
	return out
}

// withRanges is fields with the finished ranges (f=) and the unknown ones (u=).
func withRanges(fields []string, key string, finished, unknown []offsetRange) []string {
	out := append([]string(nil), fields...)
	if len(finished) > 0 {
		out = append(out, key+"="+formatRanges(finished))
	}
	if len(unknown) > 0 {
		out = append(out, "u="+formatRanges(unknown))
	}
	return out
}

// over says whether fields leave no room for the history's cover (c=, always written).
func over(fields []string) bool { return len(strings.Join(fields, " ")) > maxMetaBytes-coverBytes }

// coverBytes is room for " c=" and a time in base 36 (6 digits until the year 5188).
const coverBytes = 16

// degradeFinished keeps the lowest finished ranges that fit and makes one unknown range of
// the offsets from the first range given up to the last. If the unknown ranges alone do
// not fit, every finished and unknown offset becomes one unknown range.
func degradeFinished(core []string, finished, unknown []offsetRange) []string {
	n := len(finished)
	keeping := func(k int) []string {
		if k == n {
			return withRanges(core, "f", finished, unknown)
		}
		tail := offsetRange{finished[k].first, finished[n-1].last}
		return withRanges(core, "f", finished[:k], mergeRanges(append(slices.Clone(unknown), tail)))
	}
	k := sort.Search(n+1, func(k int) bool { return over(keeping(k)) })
	if k > 0 {
		return keeping(k - 1)
	}
	all := append(slices.Clone(unknown), finished...)
	if len(all) == 0 {
		return core // (a take waits rather than let the core alone be over: coreFits)
	}
	span := offsetRange{all[0].first, all[0].last}
	for _, r := range all {
		span = offsetRange{min(span.first, r.first), max(span.last, r.last)}
	}
	return withRanges(core, "f", nil, []offsetRange{span})
}

// maxHistoryBytes bounds the history a commit carries (r=): its newest runs; older ones are
// looked up in Port by a next owner that meets them again (README "Delivery").
const maxHistoryBytes = 2048

// fitHistory adds the history's cover (c=) and as many of its newest runs (r=) as fit in
// maxHistoryBytes and the room left; the cover moves past every run left out. Every commit
// carries it: it is encoded again only when the history or its room changed.
func fitHistory(fields []string, h history) string {
	out := strings.Join(fields, " ")
	if !h.known {
		return out
	}
	budget := max(min(maxMetaBytes-len(out)-coverBytes-len(" r="), maxHistoryBytes), 0)
	enc := h.enc
	if enc == nil {
		enc = &historyEnc{}
	}
	if enc.ver != h.ver || enc.budget != budget || enc.runs == nil {
		*enc = encodeHistory(h, budget)
	}
	b := make([]byte, 0, len(out)+coverBytes+len(" r=")+len(enc.runs))
	b = append(append(b, out...), " c="...)
	b = strconv.AppendInt(b, enc.cover, 36)
	if len(enc.runs) > 0 {
		b = append(append(b, " r="...), enc.runs...)
	}
	return string(b)
}

// encodeHistory writes h's newest runs that fit in budget bytes, and the cover that holds
// without the others.
func encodeHistory(h history, budget int) historyEnc {
	e := historyEnc{ver: h.ver, budget: budget, cover: h.cover, runs: make([]byte, 0, min(budget, 64*len(h.order)))}
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
		return true
	})
	return e
}

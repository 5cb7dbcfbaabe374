package consumer

import (
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
	unknown := relativeRanges(base, p.unknown)
	fields := withRanges(core, "f", finished, unknown)
	if over(fields) {
		fields = degradeFinished(core, finished, unknown)
	}
	return fitHistory(fields, p.history)
}

// coreFits says whether p's starts and leases fit under Kafka's limit with room for the
// rest (finished and unknown offsets given up, the history's cover).
func coreFits(base int64, p progress) bool {
	core, ok := coreFields(base, p)
	unknown := append(relativeRanges(base, p.unknown), offsetRange{0, 1 << 40}) // the finished ones, given up
	return ok && !over(withRanges(core, "f", nil, unknown))
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
// the offsets from the first range given up to the last.
func degradeFinished(core []string, finished, unknown []offsetRange) []string {
	n := len(finished)
	keeping := func(k int) []string {
		if k == n {
			return withRanges(core, "f", finished, unknown)
		}
		tail := offsetRange{finished[k].first, finished[n-1].last}
		return withRanges(core, "f", finished[:k], append(append([]offsetRange(nil), unknown...), tail))
	}
	k := sort.Search(n+1, func(k int) bool { return over(keeping(k)) })
	return keeping(max(k-1, 0))
}

// fitHistory adds the history's cover (c=) and as many of its newest runs (r=) as fit; the
// cover moves past every run left out.
func fitHistory(fields []string, h history) string {
	if !h.known {
		return strings.Join(fields, " ")
	}
	out := strings.Join(fields, " ")
	room := maxMetaBytes - len(out) - coverBytes - len(" r=")
	var runs []string
	cover := h.cover
	h.newest(func(id string, at, coverWithout int64) bool {
		e := id + "." + strconv.FormatInt(at, 36)
		if room -= len(e) + 1; room < 0 {
			cover = coverWithout
			return false
		}
		runs = append(runs, e)
		return true
	})
	out += " c=" + strconv.FormatInt(cover, 36)
	if len(runs) > 0 {
		out += " r=" + strings.Join(runs, ",")
	}
	return out
}

package consumer

import (
	"cmp"
	"slices"
	"sort"
	"strconv"
)

// marks is what a partition's commit says of its offsets, as metaWriter.encode writes it:
// the started runs and the finished ones in offset order, and the ranges nothing is known
// of (in any order). A ledger fills them from its window in place, with no map to build.
type marks struct {
	started  []startedRun
	finished []int64
	unknown  []offsetRange
}

// startedRun is a started offset and the lease it is held under, if leased.
type startedRun struct {
	offset int64
	lease  Lease
	leased bool
}

func (m *marks) reset() {
	m.started, m.finished, m.unknown = m.started[:0], m.finished[:0], m.unknown[:0]
}

// trim lets go of buffers a long window made larger than a stream of quick runs needs: a
// partition does not keep the most it ever needed.
func (m *marks) trim() {
	m.started, m.finished, m.unknown = trimmed(m.started, keptLen), trimmed(m.finished, keptLen), trimmed(m.unknown, keptLen)
}

// keptLen is the most entries a reused buffer keeps: some hundred runs in flight.
const keptLen = 1024

// trimmed is s, or nil when its array holds more than limit.
func trimmed[S ~[]E, E any](s S, limit int) S {
	if cap(s) > limit {
		return nil
	}
	return s
}

// sortedOffsets is the offsets of set, sorted.
func sortedOffsets(set map[int64]bool) []int64 {
	out := make([]int64, 0, len(set))
	for off, ok := range set {
		if ok {
			out = append(out, off)
		}
	}
	slices.Sort(out)
	return out
}

// metaWriter writes commit metadata, keeping its buffers from one commit to the next: a
// commit goes out for about every run, so what it costs is a cost of every run.
type metaWriter struct {
	buf     []byte
	deltas  []int64
	ranges  []offsetRange
	unknown []offsetRange
	holders []Lease
}

// trim is marks.trim of w's buffers; the metadata is at most a few KiB past Kafka's limit
// before its finished offsets give way.
func (w *metaWriter) trim() {
	w.buf = trimmed(w.buf, 4*maxMetaBytes)
	w.deltas, w.ranges, w.unknown = trimmed(w.deltas, keptLen), trimmed(w.ranges, keptLen), trimmed(w.unknown, keptLen)
}

// writeCore writes what must always be said: the prefix, the started offsets from base on
// and who holds them. ok is false when they name more holders than o= can (maxHolders).
func (w *metaWriter) writeCore(base int64, started []startedRun) (ok bool) {
	w.buf = append(w.buf[:0], metaPrefix...)
	started = started[sort.Search(len(started), func(i int) bool { return started[i].offset >= base }):]
	if len(started) == 0 {
		return true
	}
	w.deltas = w.deltas[:0]
	for _, s := range started {
		w.deltas = append(w.deltas, s.offset-base)
	}
	w.ranges = appendRangesOf(w.ranges[:0], w.deltas)
	w.buf = appendRanges(append(w.buf, " s="...), w.ranges)
	withoutOwners := len(w.buf)
	w.buf = append(w.buf, " o="...)
	w.holders = w.holders[:0]
	leased := false
	for _, s := range started {
		if !s.leased {
			w.buf = append(w.buf, '.')
			continue
		}
		h := slices.Index(w.holders, s.lease)
		if h < 0 {
			h = len(w.holders)
			w.holders = append(w.holders, s.lease)
		}
		if h >= maxHolders {
			w.buf = w.buf[:withoutOwners]
			return false
		}
		w.buf = append(w.buf, base36Digits[h])
		leased = true
	}
	if !leased {
		w.buf = w.buf[:withoutOwners]
		return true
	}
	w.buf = appendHolders(append(w.buf, " h="...), w.holders)
	return true
}

// base36Digits names o='s holders, one digit each (maxHolders).
const base36Digits = "0123456789abcdefghijklmnopqrstuvwxyz"

// writeRanges cuts buf back to its first n bytes and adds the finished ranges (f=) and the
// unknown ones (u=).
func (w *metaWriter) writeRanges(n int, finished, unknown []offsetRange) {
	w.buf = w.buf[:n]
	if len(finished) > 0 {
		w.buf = appendRanges(append(w.buf, " f="...), finished)
	}
	if len(unknown) > 0 {
		w.buf = appendRanges(append(w.buf, " u="...), unknown)
	}
}

// over says whether buf leaves no room for the history's cover (c=, always written).
func (w *metaWriter) over() bool { return len(w.buf) > maxMetaBytes-coverBytes }

// appendRangesOf appends sorted deltas to dst grouped into runs of consecutive ones.
func appendRangesOf(dst []offsetRange, sorted []int64) []offsetRange {
	for i := 0; i < len(sorted); {
		j := i
		for j+1 < len(sorted) && sorted[j+1] == sorted[j]+1 {
			j++
		}
		dst = append(dst, offsetRange{sorted[i], sorted[j]})
		i = j + 1
	}
	return dst
}

// appendRanges writes ranges as base-36 "a,b-c".
func appendRanges(b []byte, rs []offsetRange) []byte {
	for i, r := range rs {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, r.first, 36)
		if r.last != r.first {
			b = strconv.AppendInt(append(b, '-'), r.last, 36)
		}
	}
	return b
}

// appendRelative appends the ranges of rs from base on, as deltas from base.
func appendRelative(dst []offsetRange, base int64, rs []offsetRange) []offsetRange {
	for _, r := range rs {
		if r.last >= base {
			dst = append(dst, offsetRange{max(r.first, base) - base, r.last - base})
		}
	}
	return dst
}

// mergeRanges sorts rs in place and joins those that touch or overlap.
func mergeRanges(rs []offsetRange) []offsetRange {
	if len(rs) < 2 {
		return rs
	}
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

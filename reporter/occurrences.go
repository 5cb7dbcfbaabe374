package reporter

import "strings"

// safeCut moves cut left to the start of the stretch of overlapping value occurrences that
// would straddle it. Most cuts have none: the window around the cut says so (as masking a
// line's end costs). Occurrences that overlap one another form one stretch (the x's of a
// line masked by "xx"), found in one walk of the line up to the cut, not one search of
// every value per byte moved. A stretch that starts the line (secrets longer than a line),
// or occurrences past the overlap budget (Replace then masks the pieces whole), are cut
// where they were.
func (m *masker) safeCut(buf []byte, cut int) int {
	h := m.hold()
	if h == 0 {
		return cut
	}
	hi := min(len(buf), cut+h)
	lo := max(0, cut-h)
	straddles := false
	m.occurrences(string(buf[lo:hi]), func(start, end int) bool {
		straddles = lo+start < cut && lo+end > cut
		return !straddles
	})
	if !straddles {
		return cut
	}
	reach := make([]int32, cut) // reach[i]: the furthest end of an occurrence starting at i
	if !m.occurrences(string(buf[:hi]), func(start, end int) bool {
		if start < cut {
			reach[start] = max(reach[start], int32(end))
		}
		return true
	}) {
		return cut
	}
	start, end := 0, 0 // the stretch being walked; touching occurrences may be cut apart
	for i, r := range reach {
		if r == 0 {
			continue
		}
		if i >= end {
			start = i
		}
		end = max(end, int(r))
	}
	if start > 0 && end > cut {
		return start
	}
	return cut
}

// overlapBudget is how many times its length a text's occurrences of masked values may
// sum to before the walk of them (occurrences) gives up: secrets in real output seldom
// overlap at all.
const overlapBudget = 4

// occurrences calls found with every occurrence of every value in s, overlapping ones
// included, until found says stop. It reports false, having stopped, where the
// occurrences pile up past overlapBudget times s's length (a command's ::add-mask:: values
// "xx", "xxx", ... over a line of x's: about a gigabyte of spans for one 60 KiB line), so
// its cost stays about s's length whatever the values.
func (m *masker) occurrences(s string, found func(start, end int) bool) bool {
	budget := overlapBudget*len(s) + 4096 // bytes of occurrences found, summed
	for _, v := range m.values {
		for off := 0; off+len(v) <= len(s); {
			j := strings.Index(s[off:], v)
			if j < 0 {
				break
			}
			if budget -= len(v); budget < 0 {
				return false
			}
			if !found(off+j, off+j+len(v)) {
				return true
			}
			off += j + 1 // overlapping occurrences of the same value count too
		}
	}
	return true
}

package reporter

import (
	"slices"
	"strings"
)

// masker hides secret values in text. Every occurrence of every value is marked, overlapping
// ones included, and each stretch of marked bytes becomes one "***": replacing one value at a
// time (strings.Replacer) leaves the rest of an overlapping one in view ("XXXX1234" and
// "1234SECRETTAIL" in "XXXX1234SECRETTAIL" gave "***SECRETTAIL").
type masker struct {
	values []string // no empty ones
}

// span is a half-open byte range [start, end) of marked text.
type span struct{ start, end int }

// Replace returns s with the union of all occurrences of the values as "***".
func (m masker) Replace(s string) string {
	if len(m.values) == 0 || s == "" {
		return s
	}
	var spans []span
	for _, v := range m.values {
		for off := 0; off+len(v) <= len(s); {
			j := strings.Index(s[off:], v)
			if j < 0 {
				break
			}
			spans = append(spans, span{off + j, off + j + len(v)})
			off += j + 1 // overlapping occurrences of the same value count too
		}
	}
	if len(spans) == 0 {
		return s
	}
	slices.SortFunc(spans, func(a, b span) int { return a.start - b.start })
	var b strings.Builder
	b.Grow(len(s))
	kept := 0 // s[:kept] is written
	cur := spans[0]
	flush := func() {
		b.WriteString(s[kept:cur.start])
		b.WriteString("***")
		kept = cur.end
	}
	for _, sp := range spans[1:] {
		if sp.start <= cur.end { // overlapping or touching: one stretch
			cur.end = max(cur.end, sp.end)
			continue
		}
		flush()
		cur = sp
	}
	flush()
	b.WriteString(s[kept:])
	return b.String()
}

package reporter

import (
	"bytes"
	"encoding/json"
	"iter"
	"slices"
	"strings"
)

// masker hides secret values in text. Every occurrence of every value is marked, overlapping
// ones included, and each stretch of marked bytes becomes one "***": replacing one value at a
// time (strings.Replacer) leaves the rest of an overlapping one in view ("XXXX1234" and
// "1234SECRETTAIL" in "XXXX1234SECRETTAIL" gave "***SECRETTAIL").
//
// It also tells the line splitter where a line may be cut without splitting a secret (hold,
// safeCut), so a secret written across two writes or past maxLineBytes is still masked.
type masker struct {
	values  []string        // no empty ones, in the order they came: masking does not depend on it
	seen    map[string]bool // values as a set, once there are seenFrom of them (has)
	longest int             // the longest value's length (hold)
	// What the command added with ::add-mask::, bounded per run: every value costs every
	// later line of output a search.
	commandMasks, commandBytes int
}

// A command's ::add-mask:: values per run: at most this many, of at most this many bytes
// together (README "What Port sees"). At the bound a line costs ~8 µs more to mask
// (BENCHMARKS.md "Masking").
const (
	maxCommandMasks     = 256
	maxCommandMaskBytes = 64 << 10
)

// span is a half-open byte range [start, end) of marked text.
type span struct{ start, end int }

// add adds the agent's values to mask (its configured masks, a run's secrets): unbounded.
// Output is masked line by line, so a multi-line value is masked line by line too. Adding
// one costs amortised O(1): nothing is sorted.
//
// Each value is masked as a JSON string holds it too, for a command that prints
// $PORT_RUN_FILE or what jq made of it: a quote, a backslash, a newline or a control
// character escaped (hun"ter\2 as hun\"ter\\2), with and without encoding/json's escaping
// of <, > and &.
func (m *masker) add(values ...string) {
	for _, v := range values {
		for part := range valueParts(v) { // without building their list
			m.addPart(part)
		}
	}
}

// maskParts are what masking values takes: each value's lines and its JSON-escaped forms
// (see add). The agent's own masks are the same for every run: worked out once (Reporter).
func maskParts(values ...string) []string {
	var parts []string
	for _, v := range values {
		parts = slices.AppendSeq(parts, valueParts(v))
	}
	return parts
}

// valueParts are the parts of one value (see add).
func valueParts(v string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for part := range strings.SplitSeq(v, "\n") {
			if !yield(strings.TrimSuffix(part, "\r")) {
				return
			}
		}
		for _, e := range jsonEscaped(v) {
			if !yield(e) {
				return
			}
		}
	}
}

// addParts adds what maskParts gave.
func (m *masker) addParts(parts ...string) {
	for _, p := range parts {
		m.addPart(p)
	}
}

// jsonEscaped is v inside a JSON string as encoding/json writes it, HTML-escaped and not,
// where that is not v itself.
func jsonEscaped(v string) []string {
	if !strings.ContainsFunc(v, func(r rune) bool {
		return r < 0x20 || r >= 0x7f || r == '"' || r == '\\' || r == '<' || r == '>' || r == '&'
	}) {
		return nil // nothing either writer escapes: the common case, without the encoders
	}
	var out []string
	for _, html := range []bool{false, true} {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(html)
		if enc.Encode(v) != nil { // a string always encodes
			continue
		}
		q := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
		if e := string(q[1 : len(q)-1]); e != v && !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out
}

// addFromCommand adds a value a command asked to mask (one line), unless that would take
// the run past maxCommandMasks or maxCommandMaskBytes: then it reports false and the value
// is not masked.
func (m *masker) addFromCommand(v string) bool {
	v = strings.TrimSuffix(v, "\r")
	if v == "" || m.has(v) {
		return true
	}
	if m.commandMasks >= maxCommandMasks || m.commandBytes+len(v) > maxCommandMaskBytes {
		return false
	}
	m.commandMasks++
	m.commandBytes += len(v)
	m.addPart(v)
	return true
}

func (m *masker) addPart(part string) {
	if part == "" || m.has(part) {
		return
	}
	m.values = append(m.values, part)
	m.longest = max(m.longest, len(part))
	switch {
	case m.seen != nil:
		m.seen[part] = true
	case len(m.values) >= seenFrom:
		m.seen = make(map[string]bool, 2*len(m.values))
		for _, v := range m.values {
			m.seen[v] = true
		}
	}
}

// seenFrom is how many values a masker searches as a list before it keeps them as a set
// too: a run has a few (its token, its secrets), and a map would cost each run one.
const seenFrom = 8

// has reports whether v is one of the values.
func (m *masker) has(v string) bool {
	if m.seen != nil {
		return m.seen[v]
	}
	return slices.Contains(m.values, v)
}

// hold is how many bytes past a cut must be seen to know no secret straddles it.
func (m *masker) hold() int {
	return max(m.longest-1, 0)
}

// Replace returns s with the union of all occurrences of the values as "***"; s whole
// where they pile up past the overlap budget (occurrences): never less than the union.
func (m masker) Replace(s string) string {
	if len(m.values) == 0 || s == "" {
		return s
	}
	var spans []span
	if !m.occurrences(s, func(start, end int) bool {
		spans = append(spans, span{start, end})
		return true
	}) {
		return "***"
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

// value masks and bounds a text that goes to Port outside the log (a label, a summary).
func (m masker) value(s string) string {
	return truncate(m.Replace(s), maxValueBytes)
}

// json masks every string inside a JSON value (an output file's, a response's), and every
// number that is a masked value (an object secret's PIN) as the string "***".
func (m masker) json(v any) any {
	switch t := v.(type) {
	case string:
		return m.Replace(t)
	case float64, json.Number:
		if len(m.values) == 0 {
			return v // no masks: no number to write out and look up
		}
		if b, err := json.Marshal(t); err == nil && m.has(string(b)) {
			return "***"
		}
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[m.Replace(k)] = m.json(x)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = m.json(x)
		}
		return out
	}
	return v
}

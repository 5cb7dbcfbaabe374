package runmsg

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// parsedValues is a message read as the agent works with it: value holds what gojq and
// encoding/json work with (map[string]any, []any, string, bool, nil and normalizeNumber's
// numbers), the values encoding/json gives, built without the ordered tree in between.
type parsedValues struct {
	value any
	text  string // the message's text, which value's strings are slices of
	// stringified: raw[span[0]:span[1]] is, byte for byte, what JSON.stringify writes of the
	// value (no whitespace, no key twice in an object, every string escaped as it escapes
	// it), which is what Port signs: its signature can be checked over spans of raw.
	stringified bool
	span        [2]int
	headers     [2]int        // where the value of the root object's "headers" is; {} when it has none
	cached      *cachedObject // an object of value that came from the cache (the last one)
}

// parseValues parses raw as parseOrdered does (the same errors), into the values that
// parseOrdered's tree converted gives (toValue, the tests' oracle). stacks are the scratch
// space it may grow and leaves cleared.
func parseValues(raw []byte, stacks *parseStacks) (parsedValues, error) {
	return parseValuesCached(raw, stacks, nil)
}

// parseValuesCached is parseValues taking the "action" objects from cache, which gives the
// same values (objectCache).
func parseValuesCached(raw []byte, stacks *parseStacks, cache *objectCache) (parsedValues, error) {
	p, v, err := parseWith(jsonParser{raw: raw, text: string(raw), values: true, cache: cache}, stacks)
	if err != nil {
		return parsedValues{}, err
	}
	return parsedValues{value: v, text: p.text, stringified: p.stringified, span: p.span, headers: p.headers, cached: p.cached}, nil
}

// headersTree parses the root object's "headers" value, of the message raw that pv was read
// from, into the ordered tree.
func (pv *parsedValues) headersTree(raw []byte, stacks *parseStacks) (any, error) {
	at := pv.headers
	_, v, err := parseWith(jsonParser{raw: raw[:at[1]], text: pv.text[:at[1]], i: at[0]}, stacks)
	return v, err
}

// parseOrderedWith is parseOrdered with stacks for its scratch space.
func parseOrderedWith(raw []byte, stacks *parseStacks) (any, error) {
	_, v, err := parseWith(jsonParser{raw: raw, text: string(raw)}, stacks)
	return v, err
}

// parseWith runs the parser p, with stacks for its scratch space, which it may grow and
// leaves cleared.
func parseWith(p jsonParser, stacks *parseStacks) (jsonParser, any, error) {
	p.parseStacks = *stacks
	v, err := p.parse()
	// The scratch must not keep this message, or a secret's text, alive.
	clear(p.members[:p.membersUsed])
	clear(p.elems[:p.elemsUsed])
	clear(p.buf[:p.bufUsed])
	*stacks = parseStacks{members: p.members[:0], elems: p.elems[:0], buf: p.buf[:0]}
	return p, v, err
}

// popMembers drops the members an object pushed from base on, noting how far the stack reached.
func (p *jsonParser) popMembers(base int) {
	p.membersUsed = max(p.membersUsed, len(p.members))
	p.members = p.members[:base]
}

// popElems drops the elements an array pushed from base on, noting how far the stack reached.
func (p *jsonParser) popElems(base int) {
	p.elemsUsed = max(p.elemsUsed, len(p.elems))
	p.elems = p.elems[:base]
}

// mapOf is the object of members: a repeated key takes its last value (and JSON.stringify
// would write it once, so the text is not what it writes).
func (p *jsonParser) mapOf(ms []member) map[string]any {
	m := make(map[string]any, len(ms))
	for _, e := range ms {
		m[e.key] = e.val
	}
	if len(m) != len(ms) {
		p.stringified = false
	}
	return m
}

// normalizeNumber gives gojq's own number types (int, *big.Int, float64) so
// integers stay exact and callers type-switching on the context see the
// conventional types. Numbers beyond float64 stay json.Number, which gojq and
// encoding/json both accept and which, unlike ±Inf, can be marshalled.
func normalizeNumber(n json.Number) any {
	s := string(n)
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 0); err == nil {
			return int(i)
		}
		if bi, ok := new(big.Int).SetString(s, 10); ok {
			return bi
		}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return f
	}
	return n
}

func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string, jsString:
		return "a string"
	case json.Number, int, float64, *big.Int:
		return "a number"
	case []any:
		return "an array"
	case *object, map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

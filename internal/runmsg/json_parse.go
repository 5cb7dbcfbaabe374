package runmsg

import (
	"encoding/json"
	"fmt"
	"io"
)

// parseOrdered parses exactly one JSON value, keeping key order and number literals. It
// accepts exactly what encoding/json accepts and gives the values encoding/json gives (a
// string's invalid UTF-8 and lone surrogates read as U+FFFD, the latter also kept as
// jsString), reading each byte once: the json.Decoder Token path it replaces allocated per
// token and was the agent's largest CPU cost per run.
func parseOrdered(raw []byte) (any, error) {
	stacks := newParseStacks()
	return parseOrderedWith(raw, &stacks)
}

// jsonParser reads raw from offset i. Strings and numbers without escapes are slices of
// text, a copy of raw made once, rather than one allocation each.
type jsonParser struct {
	raw  []byte
	text string
	i    int
	parseStacks
	// values: objects are built as map[string]any and numbers as normalizeNumber gives them,
	// what the agent works with, rather than as the ordered tree (parseValues).
	values bool
	// stringified: so far the text is what JSON.stringify writes of what it holds, outside
	// the whitespace around the top-level value (parseValues).
	stringified bool
	span        [2]int        // where the top-level value starts and ends
	headers     [2]int        // values: where the root object's "headers" value starts and ends
	cache       *objectCache  // values: where the "action" objects come from (nil: parsed)
	cached      *cachedObject // the last object read from or into cache
	// used: the most of each stack the parse wrote, all that parseWith has to clear.
	membersUsed, elemsUsed, bufUsed int
}

// parseStacks is a parse's scratch space, which a Decoder keeps for its next message:
// members and elements gather on stacks shared by all levels so that each object and array
// is allocated once at its final size; buf holds the value of a string with escapes.
type parseStacks struct {
	members []member
	elems   []any
	buf     []byte
}

// newParseStacks start at a run message's size, so they rarely grow.
func newParseStacks() parseStacks {
	return parseStacks{members: make([]member, 0, 64), elems: make([]any, 0, 16)}
}

// parse reads the one value raw holds, whitespace around it allowed.
func (p *jsonParser) parse() (any, error) {
	p.skipSpace()
	p.span[0], p.stringified = p.i, true
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.span[1] = p.i
	p.skipSpace()
	if p.i < len(p.raw) {
		return nil, fmt.Errorf("data after the top-level value at offset %d", p.i)
	}
	return v, nil
}

type member struct {
	key string
	val any
}

func (p *jsonParser) skipSpace() {
	start := p.i
	for p.i < len(p.raw) {
		switch p.raw[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
			continue
		}
		break
	}
	if p.i != start {
		p.stringified = false // JSON.stringify writes none
	}
}

// syntaxError names the offending byte (one byte, never more of the message) and where.
func (p *jsonParser) syntaxError(at int, context string) error {
	if at >= len(p.raw) {
		return io.ErrUnexpectedEOF
	}
	c := p.raw[at]
	if c >= 0x20 && c < 0x7f {
		return fmt.Errorf("invalid character %q %s at offset %d", rune(c), context, at)
	}
	return fmt.Errorf("invalid byte 0x%02x %s at offset %d", c, context, at)
}

func (p *jsonParser) value(depth int) (any, error) {
	p.skipSpace()
	if p.i >= len(p.raw) {
		return nil, io.ErrUnexpectedEOF
	}
	switch c := p.raw[p.i]; c {
	case '{', '[':
		if depth >= maxDepth {
			return nil, fmt.Errorf("nested deeper than %d levels", maxDepth)
		}
		if c == '{' {
			return p.object(depth, false)
		}
		return p.array(depth)
	case '"':
		return p.str()
	case 't':
		return true, p.literal("true")
	case 'f':
		return false, p.literal("false")
	case 'n':
		return nil, p.literal("null")
	}
	if c := p.raw[p.i]; c == '-' || (c >= '0' && c <= '9') {
		return p.number()
	}
	return nil, p.syntaxError(p.i, "looking for beginning of value")
}

func (p *jsonParser) literal(word string) error {
	for j := 0; j < len(word); j++ {
		if p.i+j >= len(p.raw) || p.raw[p.i+j] != word[j] {
			return p.syntaxError(p.i+j, "in literal "+word)
		}
	}
	p.i += len(word)
	return nil
}

// object reads an object; isPayload: it is a member named "payload" (memberValue).
func (p *jsonParser) object(depth int, isPayload bool) (any, error) {
	p.i++ // {
	p.skipSpace()
	if p.i < len(p.raw) && p.raw[p.i] == '}' {
		p.i++
		if p.values {
			return map[string]any{}, nil
		}
		return newObject(), nil
	}
	var jsKeys map[string][]byte
	base := len(p.members)
	defer p.popMembers(base)
	for more := true; more; {
		p.skipSpace()
		if p.i >= len(p.raw) || p.raw[p.i] != '"' {
			return nil, p.syntaxError(p.i, "looking for beginning of object key string")
		}
		k, js, err := p.strText()
		if err != nil {
			return nil, err
		}
		if js != nil {
			if jsKeys == nil {
				jsKeys = map[string][]byte{}
			}
			jsKeys[k] = js
		}
		p.skipSpace()
		if p.i >= len(p.raw) || p.raw[p.i] != ':' {
			return nil, p.syntaxError(p.i, "after object key")
		}
		p.i++
		start := p.i
		v, err := p.memberValue(k, depth+1, isPayload)
		if err != nil {
			return nil, err
		}
		if p.values && depth == 0 && k == "headers" {
			p.headers = [2]int{start, p.i}
		}
		p.members = append(p.members, member{k, v})
		if more, err = p.next('}', "after object key:value pair"); err != nil {
			return nil, err
		}
	}
	if p.values {
		return p.mapOf(p.members[base:]), nil
	}
	return newParsedObject(p.members[base:], jsKeys), nil
}

// newParsedObject is the object of members as parsed: a repeated key keeps its first place
// and takes its last value. Small objects find repeats by a scan, larger ones by a map, so a
// hostile object of many keys costs no more than its size.
func newParsedObject(ms []member, jsKeys map[string][]byte) *object {
	o := &object{members: make([]member, 0, len(ms)), jsKeys: jsKeys}
	if len(ms) <= smallObject {
		for _, m := range ms {
			o.set(m.key, m.val)
		}
		return o
	}
	at := make(map[string]int, len(ms))
	for _, m := range ms {
		if i, ok := at[m.key]; ok {
			o.members[i].val = m.val
			continue
		}
		at[m.key] = len(o.members)
		o.members = append(o.members, m)
	}
	return o
}

// smallObject is the most members an object finds its repeated keys among by a scan.
const smallObject = 16

func (p *jsonParser) array(depth int) (any, error) {
	p.i++ // [
	p.skipSpace()
	if p.i < len(p.raw) && p.raw[p.i] == ']' {
		p.i++
		return []any{}, nil
	}
	base := len(p.elems)
	defer p.popElems(base)
	for more := true; more; {
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		p.elems = append(p.elems, v)
		if more, err = p.next(']', "after array element"); err != nil {
			return nil, err
		}
	}
	return append([]any(nil), p.elems[base:]...), nil
}

// next reads what follows an object's member or an array's element: more after a comma,
// not after the closing byte, and an error (context says where) on anything else.
func (p *jsonParser) next(closing byte, context string) (more bool, err error) {
	p.skipSpace()
	if p.i < len(p.raw) {
		switch p.raw[p.i] {
		case ',':
			p.i++
			return true, nil
		case closing:
			p.i++
			return false, nil
		}
	}
	return false, p.syntaxError(p.i, context)
}

// number returns the literal as written (JSON's grammar, as encoding/json checks it).
func (p *jsonParser) number() (any, error) {
	raw, start, i := p.raw, p.i, p.i
	digits := func() int {
		n := 0
		for i < len(raw) && raw[i] >= '0' && raw[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if raw[i] == '-' {
		i++
	}
	switch {
	case i < len(raw) && raw[i] == '0':
		i++
	case digits() == 0:
		return nil, p.syntaxError(i, "in numeric literal")
	}
	if i < len(raw) && raw[i] == '.' {
		i++
		if digits() == 0 {
			return nil, p.syntaxError(i, "after decimal point in numeric literal")
		}
	}
	if i < len(raw) && (raw[i] == 'e' || raw[i] == 'E') {
		i++
		if i < len(raw) && (raw[i] == '+' || raw[i] == '-') {
			i++
		}
		if digits() == 0 {
			return nil, p.syntaxError(i, "in exponent of numeric literal")
		}
	}
	p.i = i
	if p.values {
		return normalizeNumber(json.Number(p.text[start:i])), nil
	}
	return json.Number(p.text[start:i]), nil
}

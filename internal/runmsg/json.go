package runmsg

import (
	"bytes"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// object is a JSON object that remembers its key order. The signature covers
// the message as Port's JavaScript serialized it, so the order of keys (and the
// exact spelling of numbers) must survive a parse; map[string]any loses both.
type object struct {
	members []member // values: nil, bool, string, jsString, json.Number, []any, *object
	// jsKeys holds the JSON.stringify text of the keys that had a lone surrogate (see
	// jsString); nil for most objects. Never modified once parsed, so copies share it.
	jsKeys map[string][]byte
}

// jsString is a string whose JSON text has a lone surrogate escape ("\ud800"), which a Go
// string cannot hold: s is the value as encoding/json decodes it (U+FFFD for the
// surrogate), js the text JSON.stringify writes for the original string, which is what
// Port's signature covers.
type jsString struct {
	s  string
	js []byte
}

func newObject() *object { return &object{} }

// set keeps the first position of a repeated key and its last value, which is
// what JSON.parse followed by JSON.stringify does.
func (o *object) set(k string, v any) {
	if i := o.index(k); i >= 0 {
		o.members[i].val = v
		return
	}
	o.members = append(o.members, member{k, v})
}

// index is k's position, -1 when o has no such key. A scan: the agent looks up a few keys
// of a message's root and headers, and a map per object cost more than every lookup.
func (o *object) index(k string) int {
	for i, m := range o.members {
		if m.key == k {
			return i
		}
	}
	return -1
}

func (o *object) get(k string) (any, bool) {
	if i := o.index(k); i >= 0 {
		return o.members[i].val, true
	}
	return nil, false
}

// without returns a shallow copy of o lacking the given keys; o is unchanged.
func (o *object) without(drop ...string) *object {
	c := &object{members: make([]member, 0, len(o.members)), jsKeys: o.jsKeys}
	for _, m := range o.members {
		if !slices.Contains(drop, m.key) {
			c.members = append(c.members, m)
		}
	}
	return c
}

// with returns a shallow copy of o with k set to v; o is unchanged.
func (o *object) with(k string, v any) *object {
	c := o.without()
	c.set(k, v)
	return c
}

// maxDepth bounds nesting so a hostile message cannot make parsing or the
// recursive conversions below use unbounded stack. Run messages are shallow.
const maxDepth = 1000

// jsText reads the raw text of one JSON string token (what precedes its opening quote is
// skipped) and, when it has a lone surrogate escape, returns what JSON.stringify writes for
// that string: every surrogate that is not half of a pair as a lower-case \udxxx escape,
// everything else as appendQuoted writes it. lone is false for any other string.
func jsText(tok []byte) (js []byte, lone bool) {
	i := bytes.IndexByte(tok, '"')
	if i < 0 || !bytes.Contains(tok, []byte(`\u`)) {
		return nil, false
	}
	lit := tok[i+1 : len(tok)-1] // the decoder accepted the token: it ends with the quote
	// The string as UTF-16-ish units: escapes as their 16-bit value, other runes as is.
	units := make([]rune, 0, len(lit))
	for j := 0; j < len(lit); {
		c := lit[j]
		if c != '\\' {
			r, size := utf8.DecodeRune(lit[j:])
			units = append(units, r)
			j += size
			continue
		}
		switch e := lit[j+1]; e {
		case 'u':
			v, _ := strconv.ParseUint(string(lit[j+2:j+6]), 16, 16)
			units = append(units, rune(v))
			j += 6
			continue
		default:
			units = append(units, escapedChar(e))
		}
		j += 2
	}
	var chars []rune
	b := []byte{'"'}
	for j := 0; j < len(units); j++ {
		r := units[j]
		if utf16.IsSurrogate(r) && j+1 < len(units) {
			if pair := utf16.DecodeRune(r, units[j+1]); pair != utf8.RuneError {
				chars = append(chars, pair)
				j++
				continue
			}
		}
		if !utf16.IsSurrogate(r) {
			chars = append(chars, r)
			continue
		}
		lone = true
		b = appendChars(b, string(chars), jsonStringify)
		chars = chars[:0]
		b = append(b, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
	}
	if !lone {
		return nil, false
	}
	b = appendChars(b, string(chars), jsonStringify)
	return append(b, '"'), true
}

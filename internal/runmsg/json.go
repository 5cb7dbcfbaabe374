package runmsg

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// object is a JSON object that remembers its key order. The signature covers
// the message as Port's JavaScript serialized it, so the order of keys (and the
// exact spelling of numbers) must survive a parse; map[string]any loses both.
type object struct {
	keys []string
	vals map[string]any // nil, bool, string, jsString, json.Number, []any, *object
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

func newObject() *object { return &object{vals: map[string]any{}} }

// set keeps the first position of a repeated key and its last value, which is
// what JSON.parse followed by JSON.stringify does.
func (o *object) set(k string, v any) {
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

func (o *object) get(k string) (any, bool) {
	v, ok := o.vals[k]
	return v, ok
}

// without returns a shallow copy of o lacking the given keys; o is unchanged.
func (o *object) without(drop ...string) *object {
	c := &object{keys: make([]string, 0, len(o.keys)), vals: make(map[string]any, len(o.vals)), jsKeys: o.jsKeys}
	for _, k := range o.keys {
		if contains(drop, k) {
			continue
		}
		c.keys = append(c.keys, k)
		c.vals[k] = o.vals[k]
	}
	return c
}

// with returns a shallow copy of o with k set to v; o is unchanged.
func (o *object) with(k string, v any) *object {
	c := o.without()
	c.set(k, v)
	return c
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// maxDepth bounds nesting so a hostile message cannot make parsing or the
// recursive conversions below use unbounded stack. Run messages are shallow.
const maxDepth = 1000

// parseOrdered parses exactly one JSON value, keeping key order and number literals. It
// accepts exactly what encoding/json accepts and gives the values encoding/json gives (a
// string's invalid UTF-8 and lone surrogates read as U+FFFD, the latter also kept as
// jsString), reading each byte once: the json.Decoder Token path it replaces allocated per
// token and was the agent's largest CPU cost per run.
func parseOrdered(raw []byte) (any, error) {
	p := jsonParser{raw: raw, text: string(raw)}
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.i < len(raw) {
		return nil, fmt.Errorf("data after the top-level value at offset %d", p.i)
	}
	return v, nil
}

// jsonParser reads raw from offset i. Strings and numbers without escapes are slices of
// text, a copy of raw made once, rather than one allocation each; members and elements
// gather on stacks shared by all levels so that each object and array is allocated once at
// its final size; buf is scratch space for strings with escapes.
type jsonParser struct {
	raw     []byte
	text    string
	i       int
	members []member
	elems   []any
	buf     []byte
}

type member struct {
	key string
	val any
}

func (p *jsonParser) skipSpace() {
	for p.i < len(p.raw) {
		switch p.raw[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
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
			return p.object(depth)
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

func (p *jsonParser) object(depth int) (any, error) {
	p.i++ // {
	o := &object{}
	p.skipSpace()
	if p.i < len(p.raw) && p.raw[p.i] == '}' {
		p.i++
		o.vals = map[string]any{}
		return o, nil
	}
	base := len(p.members)
	defer func() { p.members = p.members[:base] }()
	for {
		p.skipSpace()
		if p.i >= len(p.raw) || p.raw[p.i] != '"' {
			return nil, p.syntaxError(p.i, "looking for beginning of object key string")
		}
		kv, err := p.str()
		if err != nil {
			return nil, err
		}
		var k string
		switch kv := kv.(type) {
		case string:
			k = kv
		case jsString:
			if o.jsKeys == nil {
				o.jsKeys = map[string][]byte{}
			}
			o.jsKeys[kv.s] = kv.js
			k = kv.s
		}
		p.skipSpace()
		if p.i >= len(p.raw) || p.raw[p.i] != ':' {
			return nil, p.syntaxError(p.i, "after object key")
		}
		p.i++
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		p.members = append(p.members, member{k, v})
		p.skipSpace()
		if p.i < len(p.raw) {
			switch p.raw[p.i] {
			case ',':
				p.i++
				continue
			case '}':
				p.i++
				ms := p.members[base:]
				o.keys = make([]string, 0, len(ms))
				o.vals = make(map[string]any, len(ms))
				for _, m := range ms {
					o.set(m.key, m.val)
				}
				return o, nil
			}
		}
		return nil, p.syntaxError(p.i, "after object key:value pair")
	}
}

func (p *jsonParser) array(depth int) (any, error) {
	p.i++ // [
	p.skipSpace()
	if p.i < len(p.raw) && p.raw[p.i] == ']' {
		p.i++
		return []any{}, nil
	}
	base := len(p.elems)
	defer func() { p.elems = p.elems[:base] }()
	for {
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		p.elems = append(p.elems, v)
		p.skipSpace()
		if p.i < len(p.raw) {
			switch p.raw[p.i] {
			case ',':
				p.i++
				continue
			case ']':
				p.i++
				return append([]any(nil), p.elems[base:]...), nil
			}
		}
		return nil, p.syntaxError(p.i, "after array element")
	}
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
	return json.Number(p.text[start:i]), nil
}

// str reads the string literal at p.i: a string, or a jsString when it has a lone
// surrogate escape.
func (p *jsonParser) str() (any, error) {
	raw, start := p.raw, p.i
	i := start + 1
	plain, surrogate := true, false // plain: the bytes are the value; surrogate: a \ud800-\udfff escape
	for {
		if i >= len(raw) {
			return nil, io.ErrUnexpectedEOF
		}
		c := raw[i]
		switch {
		case c == '"':
			p.i = i + 1
			if plain {
				return p.text[start+1 : i], nil
			}
			s := p.unescape(raw[start+1 : i])
			if surrogate {
				if js, lone := jsText(raw[start : i+1]); lone {
					return jsString{s: s, js: js}, nil
				}
			}
			return s, nil
		case c == '\\':
			plain = false
			if i+1 >= len(raw) {
				return nil, io.ErrUnexpectedEOF
			}
			switch raw[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				r, err := p.hex4(i + 2)
				if err != nil {
					return nil, err
				}
				surrogate = surrogate || utf16.IsSurrogate(r)
				i += 6
			default:
				return nil, p.syntaxError(i+1, "in string escape code")
			}
		case c < 0x20:
			return nil, p.syntaxError(i, "in string literal")
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && size == 1 {
				plain = false
			}
			i += size
		}
	}
}

// hex4 reads the four hex digits of a \u escape at raw[at:].
func (p *jsonParser) hex4(at int) (rune, error) {
	var r rune
	for j := at; j < at+4; j++ {
		if j >= len(p.raw) {
			return 0, io.ErrUnexpectedEOF
		}
		d, ok := hexDigit(p.raw[j])
		if !ok {
			return 0, p.syntaxError(j, "in \\u hexadecimal character escape")
		}
		r = r<<4 | d
	}
	return r, nil
}

func hexDigit(c byte) (rune, bool) {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0'), true
	case c >= 'a' && c <= 'f':
		return rune(c - 'a' + 10), true
	case c >= 'A' && c <= 'F':
		return rune(c - 'A' + 10), true
	}
	return 0, false
}

// unescape is the value of a checked string literal's contents as encoding/json gives it:
// escapes decoded, a surrogate pair joined, a lone surrogate and each invalid UTF-8 byte
// U+FFFD.
func (p *jsonParser) unescape(lit []byte) string {
	b := p.buf[:0]
	for i := 0; i < len(lit); {
		c := lit[i]
		switch {
		case c == '\\':
			switch e := lit[i+1]; e {
			case 'u':
				r := unhex4(lit[i+2:])
				i += 6
				if utf16.IsSurrogate(r) {
					if i+6 <= len(lit) && lit[i] == '\\' && lit[i+1] == 'u' {
						if pair := utf16.DecodeRune(r, unhex4(lit[i+2:])); pair != utf8.RuneError {
							b = utf8.AppendRune(b, pair)
							i += 6
							continue
						}
					}
					r = utf8.RuneError
				}
				b = utf8.AppendRune(b, r)
				continue
			default:
				b = append(b, byte(escapedChar(e)))
			}
			i += 2
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRune(lit[i:])
			b = utf8.AppendRune(b, r) // an invalid byte: r is U+FFFD, size 1
			i += size
		}
	}
	p.buf = b
	return string(b)
}

// escapedChar is the character a one-letter escape (\n, \", ...) stands for.
func escapedChar(e byte) rune {
	switch e {
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	}
	return rune(e) // \" \\ \/
}

// unhex4 is the value of four hex digits str has already checked.
func unhex4(h []byte) rune {
	var r rune
	for _, c := range h[:4] {
		d, _ := hexDigit(c)
		r = r<<4 | d
	}
	return r
}

// jsText reads the raw text of one JSON string token (what precedes its opening quote is
// skipped) and, when it has a lone surrogate escape, returns what JSON.stringify writes for
// that string: every surrogate that is not half of a pair as a lower-case \udxxx escape,
// everything else as appendJSString writes it. lone is false for any other string.
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
		b = appendJSChars(b, string(chars))
		chars = chars[:0]
		b = append(b, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
	}
	if !lone {
		return nil, false
	}
	b = appendJSChars(b, string(chars))
	return append(b, '"'), true
}

package runmsg

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// style is whose serializer the written bytes must match, byte for byte.
type style bool

const (
	// jsonStringify is JavaScript's JSON.stringify: the bytes Port computed its HMAC over.
	// It writes a parsed message: *object in its order, json.Number as sent, jsString.
	jsonStringify style = false
	// encodingJSON is Go's encoding/json with HTML escaping off: $PORT_RUN_FILE's bytes, which
	// commands may compare. It writes a run context, made of the types runmsg, gojq and
	// json.Unmarshal give (map[string]any, []any, string, bool, nil, int, float64); any other
	// type goes through encoding/json itself, so the bytes are the same whatever the context
	// holds (FuzzContextJSONAgreesWithEncodingJSON).
	encodingJSON style = true
)

// appendJS serializes a parsed message the way JavaScript's JSON.stringify does, because
// that is the byte string Port computed its HMAC over.
func appendJS(b []byte, v any) []byte {
	b, _ = appendJSON(b, v, jsonStringify, nil) // only encodingJSON's fallback can fail
	return b
}

// appendJSON appends v as st's serializer writes it; shared, if not nil, has the objects
// written more than once (encodingJSON only). Errors are encoding/json's (NaN, ±Inf, a type
// it cannot marshal); jsonStringify never fails.
func appendJSON(b []byte, v any, st style, shared *sharedObjects) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case string:
		return appendQuoted(b, v, st), nil
	case []any:
		if v == nil && st == encodingJSON {
			return append(b, "null"...), nil
		}
		return appendArray(b, v, st, shared)
	case *object:
		if st == jsonStringify {
			return appendOrderedObject(b, v, st)
		}
	case jsString:
		if st == jsonStringify {
			return append(b, v.js...), nil
		}
	case json.Number:
		if st == jsonStringify {
			return append(b, v...), nil // as written: Port signs what it sent
		}
	case int:
		if st == encodingJSON {
			return strconv.AppendInt(b, int64(v), 10), nil
		}
	case float64:
		if st == encodingJSON && !math.IsInf(v, 0) && !math.IsNaN(v) { // else encoding/json's error
			return appendGoJSONFloat(b, v), nil
		}
	case map[string]any:
		if st == encodingJSON {
			return appendSortedObject(b, v, st, shared)
		}
	}
	if st == jsonStringify {
		// Unreachable for parseOrdered's output; fail loudly in the MAC rather than panic.
		return append(b, fmt.Sprintf("<%T>", v)...), nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return b, err
	}
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})...), nil
}

func appendArray(b []byte, v []any, st style, shared *sharedObjects) ([]byte, error) {
	var err error
	b = append(b, '[')
	for i, e := range v {
		if i > 0 {
			b = append(b, ',')
		}
		if b, err = appendJSON(b, e, st, shared); err != nil {
			return b, err
		}
	}
	return append(b, ']'), nil
}

// appendOrderedObject writes a parsed object in its order, each key as it was sent, but for
// the keys in drop.
func appendOrderedObject(b []byte, o *object, st style, drop ...string) ([]byte, error) {
	var err error
	b = append(b, '{')
	first := true
	for _, m := range o.members {
		if slices.Contains(drop, m.key) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		if js, ok := o.jsKeys[m.key]; ok {
			b = append(b, js...)
		} else {
			b = appendQuoted(b, m.key, st)
		}
		b = append(b, ':')
		if b, err = appendJSON(b, m.val, st, nil); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

// appendSortedObject writes m with its keys sorted, as encoding/json does; an object of
// shared is written once and copied from there.
func appendSortedObject(b []byte, m map[string]any, st style, shared *sharedObjects) ([]byte, error) {
	if m == nil {
		return append(b, "null"...), nil
	}
	span := shared.find(m)
	if span != nil && span.enc != nil {
		return append(b, span.enc...), nil
	}
	if span != nil && span.written {
		return append(b, b[span.start:span.end]...), nil
	}
	start := len(b)
	var small [16]string // a context's objects are small: their keys stay off the heap
	keys := small[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var err error
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendQuoted(b, k, st)
		b = append(b, ':')
		if b, err = appendJSON(b, m[k], st, shared); err != nil {
			return b, err
		}
	}
	b = append(b, '}')
	if span != nil {
		*span = objectSpan{m: span.m, start: start, end: len(b), written: true}
	}
	return b, nil
}

// sharedObjects are objects a value holds more than once, and where in the bytes written
// so far each was first written: a run context holds its message, and again the message's
// properties, entity and trigger, the same maps, whose bytes are the same both times.
type sharedObjects struct {
	n    int
	objs [maxSharedObjects]objectSpan
}

// maxSharedObjects is more than a context has members.
const maxSharedObjects = 16

type objectSpan struct {
	m          unsafe.Pointer // the map's identity
	start, end int
	written    bool
	enc        []byte // the map's bytes written before (addWritten), not in those so far
}

// add makes v, if it is an object, one to write once.
func (s *sharedObjects) add(v any) {
	if m, ok := v.(map[string]any); ok && m != nil && s.n < maxSharedObjects && s.find(m) == nil {
		s.objs[s.n].m = reflect.ValueOf(m).UnsafePointer()
		s.n++
	}
}

// find is m's span, nil when m is not one of s (or s is nil).
func (s *sharedObjects) find(m map[string]any) *objectSpan {
	if s == nil || s.n == 0 {
		return nil
	}
	p := reflect.ValueOf(m).UnsafePointer()
	for i := range s.objs[:s.n] {
		if s.objs[i].m == p {
			return &s.objs[i]
		}
	}
	return nil
}

// appendGoJSONFloat formats f as encoding/json does (ES6 number-to-string: 'f' between 1e-6
// and 1e21, else 'e' with a short exponent).
func appendGoJSONFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 -> e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendQuoted writes s as a JSON string in st.
func appendQuoted(b []byte, s string, st style) []byte {
	b = append(b, '"')
	b = appendChars(b, s, st)
	return append(b, '"')
}

// appendChars is appendQuoted without the quotes. Both styles escape '"', '\' and the
// control characters alike; encoding/json also writes invalid UTF-8 as \ufffd and escapes
// U+2028 and U+2029, which JSON.stringify leaves alone (as it does <, > and &).
func appendChars(b []byte, s string, st style) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf:
			i++
			continue
		case c < utf8.RuneSelf:
			b = append(b, s[start:i]...)
			b = appendEscapedByte(b, c)
			i++
		case st == jsonStringify:
			i++
			continue
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			invalid := r == utf8.RuneError && size == 1
			if !invalid && r != '\u2028' && r != '\u2029' {
				i += size
				continue
			}
			b = append(b, s[start:i]...)
			if invalid {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			}
			i += size
		}
		start = i
	}
	return append(b, s[start:]...)
}

// appendEscapedByte escapes '"', '\' or a control character.
func appendEscapedByte(b []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(b, '\\', c)
	case '\b':
		return append(b, '\\', 'b')
	case '\f':
		return append(b, '\\', 'f')
	case '\n':
		return append(b, '\\', 'n')
	case '\r':
		return append(b, '\\', 'r')
	case '\t':
		return append(b, '\\', 't')
	}
	return append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
}

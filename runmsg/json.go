package runmsg

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
)

// object is a JSON object that remembers its key order. The signature covers
// the message as Port's JavaScript serialized it, so the order of keys (and the
// exact spelling of numbers) must survive a parse; map[string]any loses both.
type object struct {
	keys []string
	vals map[string]any // nil, bool, string, json.Number, []any, *object
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
	c := &object{keys: make([]string, 0, len(o.keys)), vals: make(map[string]any, len(o.vals))}
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

// parseOrdered parses exactly one JSON value, keeping key order and number
// literals.
func parseOrdered(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := parseValue(dec, 0)
	if err != nil {
		return nil, err
	}
	switch _, err := dec.Token(); {
	case err == io.EOF:
		return v, nil
	case err != nil:
		return nil, err
	default:
		return nil, errors.New("data after the top-level value")
	}
}

func parseValue(dec *json.Decoder, depth int) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil // nil, bool, string or json.Number
	}
	if depth >= maxDepth {
		return nil, fmt.Errorf("nested deeper than %d levels", maxDepth)
	}
	switch d {
	case '{':
		o := newObject()
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k, ok := kt.(string)
			if !ok {
				return nil, fmt.Errorf("object key is %v", kt)
			}
			v, err := parseValue(dec, depth+1)
			if err != nil {
				return nil, err
			}
			o.set(k, v)
		}
		if err := closeDelim(dec, '}'); err != nil {
			return nil, err
		}
		return o, nil
	case '[':
		arr := []any{}
		for dec.More() {
			v, err := parseValue(dec, depth+1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		if err := closeDelim(dec, ']'); err != nil {
			return nil, err
		}
		return arr, nil
	}
	return nil, fmt.Errorf("unexpected %q", rune(d))
}

func closeDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	if tok != want {
		return fmt.Errorf("expected %q, got %v", rune(want), tok)
	}
	return nil
}

// appendJS serializes v the way JavaScript's JSON.stringify does, because that
// is the byte string Port computed its HMAC over.
func appendJS(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		return strconv.AppendBool(b, v)
	case string:
		return appendJSString(b, v)
	case json.Number:
		return append(b, v...) // as written: Port signs what it sent
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJS(b, e)
		}
		return append(b, ']')
	case *object:
		b = append(b, '{')
		for i, k := range v.keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSString(b, k)
			b = append(b, ':')
			b = appendJS(b, v.vals[k])
		}
		return append(b, '}')
	}
	// Unreachable for parseOrdered's output; fail loudly in the MAC rather
	// than panic.
	return append(b, fmt.Sprintf("<%T>", v)...)
}

const hexDigits = "0123456789abcdef"

// appendJSString escapes only what JSON.stringify escapes: unlike encoding/json
// it leaves <, >, & and U+2028/U+2029 alone.
func appendJSString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"':
			b = append(b, '\\', '"')
		case '\\':
			b = append(b, '\\', '\\')
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// toValue converts the ordered tree into the plain values gojq and
// encoding/json work with.
func toValue(v any) any {
	switch v := v.(type) {
	case *object:
		m := make(map[string]any, len(v.keys))
		for _, k := range v.keys {
			m[k] = toValue(v.vals[k])
		}
		return m
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = toValue(e)
		}
		return out
	case json.Number:
		return normalizeNumber(v)
	}
	return v
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
	case string:
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

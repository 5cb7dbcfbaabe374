package runmsg

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
)

// parseOrderedOracle is the decoder runmsg used until the hand-written one: encoding/json's
// Token API. It stays as the oracle FuzzParseOrderedAgreesWithOracle compares against. It parses exactly one JSON value, keeping key order and number
// literals.
func parseOrderedOracle(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	p := oracleParser{dec: dec, raw: raw}
	v, err := p.value(0)
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

// oracleParser reads tokens from dec, which reads raw: the raw bytes of a string token tell a lone
// surrogate escape from the U+FFFD the decoder gives for it.
type oracleParser struct {
	dec *json.Decoder
	raw []byte
}

// token is dec.Token, with a string that had a lone surrogate escape as a jsString.
func (p *oracleParser) token() (any, error) {
	start := p.dec.InputOffset()
	tok, err := p.dec.Token()
	if s, ok := tok.(string); ok && err == nil {
		if js, lone := jsText(p.raw[start:p.dec.InputOffset()]); lone {
			return jsString{s: s, js: js}, nil
		}
	}
	return tok, err
}

func (p *oracleParser) value(depth int) (any, error) {
	dec := p.dec
	tok, err := p.token()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil // nil, bool, string, jsString or json.Number
	}
	if depth >= maxDepth {
		return nil, fmt.Errorf("nested deeper than %d levels", maxDepth)
	}
	switch d {
	case '{':
		o := newObject()
		for dec.More() {
			kt, err := p.token()
			if err != nil {
				return nil, err
			}
			if js, ok := kt.(jsString); ok {
				if o.jsKeys == nil {
					o.jsKeys = map[string][]byte{}
				}
				o.jsKeys[js.s] = js.js
				kt = js.s
			}
			k, ok := kt.(string)
			if !ok {
				return nil, fmt.Errorf("object key is %v", kt)
			}
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			o.set(k, v)
		}
		if err := oracleCloseDelim(dec, '}'); err != nil {
			return nil, err
		}
		return o, nil
	case '[':
		arr := []any{}
		for dec.More() {
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		if err := oracleCloseDelim(dec, ']'); err != nil {
			return nil, err
		}
		return arr, nil
	}
	return nil, fmt.Errorf("unexpected %q", rune(d))
}

func oracleCloseDelim(dec *json.Decoder, want json.Delim) error {
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

// Objects past smallObject find repeated keys by a map: the same tree as the oracle's.
func TestParseOrderedLargeObjectsAgreeWithOracle(t *testing.T) {
	for _, n := range []int{smallObject - 1, smallObject, smallObject + 1, 1000} {
		var b strings.Builder
		b.WriteString("{")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, `"k%d":%d,`, i%(n/2+1), i) // the later half repeats the first half's keys
		}
		b.WriteString(`"last":{"a":1,"a":2}}`)
		raw := []byte(b.String())
		want, werr := parseOrderedOracle(raw)
		got, gerr := parseOrdered(raw)
		if werr != nil || gerr != nil {
			t.Fatalf("%d keys: %v, %v", n, werr, gerr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%d keys: the tree differs from the oracle's", n)
		}
	}
}

// toValue converts the ordered tree into the plain values gojq and encoding/json work with,
// as runmsg did before parseValues built them directly: the oracle of parseValues.
func toValue(v any) any {
	switch v := v.(type) {
	case *object:
		m := make(map[string]any, len(v.members))
		for _, e := range v.members {
			m[e.key] = toValue(e.val)
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
	case jsString:
		return v.s
	}
	return v
}

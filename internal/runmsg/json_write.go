package runmsg

import (
	"encoding/json"
	"fmt"
	"strconv"
)

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
	case jsString:
		return append(b, v.js...)
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
			if js, ok := v.jsKeys[k]; ok {
				b = append(b, js...)
			} else {
				b = appendJSString(b, k)
			}
			b = append(b, ':')
			b = appendJS(b, v.vals[i])
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
	b = appendJSChars(b, s)
	return append(b, '"')
}

// appendJSChars is appendJSString without the quotes.
func appendJSChars(b []byte, s string) []byte {
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
	return append(b, s[start:]...)
}

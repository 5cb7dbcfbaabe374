package runmsg

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// toValue converts the ordered tree into the plain values gojq and
// encoding/json work with.
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

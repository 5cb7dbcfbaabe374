package runmsg

import (
	"bytes"
	"encoding/json"
	"math"
	"math/big"
	"path/filepath"
	"testing"
)

// contextJSONOracle is ContextJSON as it was before the hand-written encoder: encoding/json
// with HTML escaping off. The hand-written one must write the same bytes.
func contextJSONOracle(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// contextOf is a run context holding v the ways a run's values arrive: as runmsg's decoder
// gives them (int, *big.Int, float64, json.Number), as json.Unmarshal gives a decrypted
// secret input (float64), and as a string key and value.
func contextsOf(t testing.TB, raw []byte, s string, f float64) []map[string]any {
	out := []map[string]any{{"runId": "r_1", s: s, "f": f, "list": []any{s, f, nil, true, 3}, "none": []any(nil), "nomap": map[string]any(nil)}}
	if v, err := parseOrdered(raw); err == nil {
		out = append(out, map[string]any{"message": toValue(v), "properties": map[string]any{s: toValue(v)}})
		// Shaped as the decoder makes a context: the message, and its members again as they
		// are (the same maps), before and after it in key order; the message twice too.
		msg := toValue(v)
		shared := map[string]any{"message": msg, "again": msg, s: msg}
		if m, ok := msg.(map[string]any); ok {
			for k, val := range m {
				shared[k] = val
				shared["~"+k] = val
				shared[" "+k] = []any{val, m}
			}
		}
		out = append(out, shared)
	}
	var plain any
	if json.Unmarshal(raw, &plain) == nil {
		out = append(out, map[string]any{"properties": map[string]any{"secret": plain, "k": s}})
	}
	return out
}

func checkContextJSON(t *testing.T, ctx map[string]any) {
	t.Helper()
	checkRunFile(t, Run{Context: ctx})
}

// checkRunFile checks the run file of a decoded run, whose action object's bytes may be the
// Decoder's cache's.
func checkRunFile(t *testing.T, run Run) {
	t.Helper()
	want, werr := contextJSONOracle(run.Context)
	got, gerr := run.ContextJSON()
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("errors differ: encoding/json %v, hand-written %v", werr, gerr)
	}
	if werr == nil && !bytes.Equal(got, want) {
		t.Fatalf("bytes differ:\n got %q\nwant %q", got, want)
	}
}

// $PORT_RUN_FILE's bytes are those encoding/json wrote before (commands may compare them):
// the hand-written encoder must agree with it on every value a context can hold.
func FuzzContextJSONAgreesWithEncodingJSON(f *testing.F) {
	for _, path := range vectorFiles(f) {
		f.Add(readVector(f, filepath.Base(path)), "name", 1.5)
	}
	for _, s := range []string{
		`{"a":1,"b":[true,false,null],"a":{"x":-0.5e+3}}`, `[]`, `{}`, `1e400`, `123456789012345678901234567890`,
		`-0`, `0.000001`, `0.0000001`, `1e21`, `1e20`, `-1.5e-7`, `"<&>\u2028\u2029"`, `"\ud800"`, `{"\u0000":"\u001f"}`,
		`[1.0, 2.50, 1E2, -0.0]`, `{"b":1,"a":2,"B":3,"é":4}`,
	} {
		f.Add([]byte(s), "<script>\u2028\x00\xff\"\\/\b\f\n\r\t\x7f", 1e-7)
	}
	for _, s := range sameActionSeeds {
		f.Add([]byte(s), "", 0.0)
	}
	f.Add([]byte(`{}`), "", 1e21)
	f.Add([]byte(`{}`), "x", 123456789.0)
	f.Add([]byte(`{}`), "x", -0.0)
	d := mustDecoder(f, Options{})
	f.Fuzz(func(t *testing.T, raw []byte, s string, fl float64) {
		for _, ctx := range contextsOf(t, raw, s, fl) {
			checkContextJSON(t, ctx)
		}
		if run, err := d.Decode(raw); err == nil {
			checkRunFile(t, run)
		}
	})
}

func TestContextJSONAgreesOnOddValues(t *testing.T) {
	for _, v := range []any{math.NaN(), math.Inf(1), json.Number("12.50"), json.Number(""), json.Number("x"),
		new(big.Int).Lsh(big.NewInt(1), 100), (*big.Int)(nil), struct{ A string }{"<"}, map[string]string{"b": "1", "a": "2"},
		int64(7), float32(0.1), []string{"a"}, math.MaxFloat64, math.SmallestNonzeroFloat64, -1e-7} {
		checkContextJSON(t, map[string]any{"v": v, "list": []any{v}})
	}
}

// The run file is written for every run: by hand it must allocate at most a third of what
// encoding/json's reflection did for a real message's context (a count, not a time).
func TestContextJSONAllocatesLessThanEncodingJSON(t *testing.T) {
	run := decodedVector(t)
	got := testing.AllocsPerRun(50, func() {
		if _, err := run.ContextJSON(); err != nil {
			t.Fatal(err)
		}
	})
	oracle := testing.AllocsPerRun(50, func() {
		if _, err := contextJSONOracle(run.Context); err != nil {
			t.Fatal(err)
		}
	})
	if got*3 > oracle {
		t.Fatalf("the run file of the vector allocates %.0f times, encoding/json %.0f: want at most a third", got, oracle)
	}
}

// marshalCount counts its encodings.
type marshalCount struct{ n *int }

func (m marshalCount) MarshalJSON() ([]byte, error) {
	*m.n++
	return []byte(`"counted"`), nil
}

// The message's objects that the context holds again (properties, entity, trigger: the
// same maps) are written once and copied: the run file is written for every run.
func TestContextJSONWritesSharedObjectsOnce(t *testing.T) {
	var n int
	entity := map[string]any{"identifier": "e", "x": marshalCount{&n}}
	props := map[string]any{"p": marshalCount{&n}, "nested": map[string]any{"q": marshalCount{&n}}}
	msg := map[string]any{"payload": map[string]any{"entity": entity, "properties": props}}
	ctx := map[string]any{"entity": entity, "message": msg, "properties": props, "runId": "r_1"}
	checkContextJSON(t, ctx) // the oracle encodes each twice, the run file once
	if n != 6+3 {
		t.Fatalf("%d encodings of the shared values, want 6 by the oracle and 3 by the run file", n)
	}
}

func decodedVector(t testing.TB) Run {
	d := mustDecoder(t, Options{Secret: vectorSecret, VerifySignature: true})
	run, err := d.Decode(readVector(t, "create_microservice.signed.json"))
	if err != nil {
		t.Fatal(err)
	}
	return run
}

func BenchmarkContextJSON(b *testing.B) {
	run := decodedVector(b)
	for _, c := range []struct {
		name   string
		encode func() ([]byte, error)
	}{{"handwritten", run.ContextJSON}, {"encodingjson", func() ([]byte, error) { return contextJSONOracle(run.Context) }}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.encode(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

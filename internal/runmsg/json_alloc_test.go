package runmsg

import (
	"encoding/json"
	"testing"
)

// Parsing is the agent's first cost per run: the hand-written decoder must allocate at
// most a third of what the Token path did for a real message (a count, not a time: the
// same on a loaded machine).
func TestParseOrderedAllocatesLessThanTokenPath(t *testing.T) {
	raw := readVector(t, "create_microservice.signed.json")
	parse := func(f func([]byte) (any, error)) func() {
		return func() {
			if _, err := f(raw); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := testing.AllocsPerRun(50, parse(parseOrdered))
	oracle := testing.AllocsPerRun(50, parse(parseOrderedOracle))
	if got*3 > oracle {
		t.Fatalf("parsing the vector allocates %.0f times, the Token path %.0f: want at most a third", got, oracle)
	}
}

func BenchmarkParseOrdered(b *testing.B) {
	raw := readVector(b, "create_microservice.signed.json")
	for _, c := range []struct {
		name  string
		parse func([]byte) (any, error)
	}{{"handwritten", parseOrdered}, {"tokenpath", parseOrderedOracle}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if _, err := c.parse(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeVerified(b *testing.B) {
	raw := readVector(b, "create_microservice.signed.json")
	d := mustDecoder(b, Options{Secret: vectorSecret, VerifySignature: true})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Decode(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// What parsing may allocate: the text's copy and its two stacks, and per object its struct and
// members, per array its elements, per string or number value its box in an interface. Keys cost
// nothing of their own, nor do objects a map each.
func TestParseOrderedAllocatesPerValueOnly(t *testing.T) {
	raw := readVector(t, "create_microservice.signed.json")
	tree, err := parseOrdered(raw)
	if err != nil {
		t.Fatal(err)
	}
	var budget func(v any) int
	budget = func(v any) int {
		switch v := v.(type) {
		case *object:
			n := 2
			for _, e := range v.members {
				n += budget(e.val)
			}
			return n
		case []any:
			n := 1
			for _, e := range v {
				n += budget(e)
			}
			return n
		case string, json.Number, jsString:
			return 1
		}
		return 0
	}
	want := 3 + budget(tree)
	got := testing.AllocsPerRun(50, func() {
		if _, err := parseOrdered(raw); err != nil {
			t.Fatal(err)
		}
	})
	if int(got) > want {
		t.Fatalf("parsing the vector allocates %.0f times, want at most %d", got, want)
	}
}

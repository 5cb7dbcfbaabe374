package runmsg

import (
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

package runmsg

import (
	"path/filepath"
	"strings"
	"testing"
)

// The cost of each real-shaped vector as the agent pays it per run: decoding (verified, as
// the agent runs by default, and trusted) and then the run file's bytes. A refused vector
// (tampered, unsigned) costs its refusal. Compare allocs/op and B/op, not ns/op: the counts
// hold on a loaded machine.
func BenchmarkDecodeVectors(b *testing.B) {
	decoders := []struct {
		name string
		d    *Decoder
	}{
		{"verified", mustDecoder(b, Options{Secret: vectorSecret, VerifySignature: true})},
		{"trusted", mustDecoder(b, Options{})},
	}
	for _, path := range vectorFiles(b) {
		name := strings.TrimSuffix(filepath.Base(path), ".json")
		raw := readVector(b, filepath.Base(path))
		for _, c := range decoders {
			b.Run(name+"/"+c.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if run, err := c.d.Decode(raw); err == nil {
						if _, err := run.ContextJSON(); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}

// BenchmarkContextJSONVectors is the run file's share of BenchmarkDecodeVectors.
func BenchmarkContextJSONVectors(b *testing.B) {
	d := mustDecoder(b, Options{})
	for _, path := range vectorFiles(b) {
		run, err := d.Decode(readVector(b, filepath.Base(path)))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(strings.TrimSuffix(filepath.Base(path), ".json"), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := run.ContextJSON(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

package runmsg

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// hugeFlatMessage is a message of about 1 MiB whose one object has some hundred thousand keys.
func hugeFlatMessage() []byte {
	var b strings.Builder
	b.WriteString(`{"action":"a","context":{"runId":"r"},"p":{`)
	for i := 0; b.Len() < 1<<20-64; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"%x":0`, i)
	}
	b.WriteString(`},"q":[` + strings.Repeat(`0,`, 2000) + `0],"s":"` + strings.Repeat(`\n`, 40<<10) + `"}`)
	return []byte(b.String())
}

// A scratch one huge message grew is not kept for the next message: every later decode would
// carry (and clear) it. One that a run message used is kept.
func TestOversizedScratchIsNotKept(t *testing.T) {
	d := mustDecoder(t, Options{Secret: vectorSecret, VerifySignature: true})
	small := readVector(t, "create_microservice.signed.pretty.json")
	for _, tc := range []struct {
		name string
		raw  []byte
		kept bool
	}{{"run message", small, true}, {"huge message", hugeFlatMessage(), false}} {
		s := &decodeScratch{stacks: newParseStacks()}
		d.documentWith(s, tc.raw, true)
		if s.small() != tc.kept {
			t.Errorf("%s (members %d, elems %d, buf %d): kept %v, want %v", tc.name,
				cap(s.stacks.members), cap(s.stacks.elems), cap(s.stacks.buf), !tc.kept, tc.kept)
		}
		d.release(s)
		for g := d.scratch.Get(); g != nil; g = d.scratch.Get() { // empty the pool
			if g == s && !tc.kept {
				t.Fatalf("%s: the pool gave back its scratch", tc.name)
			}
		}
	}
}

// A parse leaves its scratch as clear as it found it: no value of the message, and no text
// of an escaped string (a secret input, say), stays behind in memory kept for later.
func TestParseClearsTheScratchItUsed(t *testing.T) {
	stacks := newParseStacks()
	raw := []byte(`{"a":[{"b":"hun\"ter2"},[1,2,3]],"c":{"d":"x\ty"},"e":"se\\cret"}`)
	if _, err := parseValues(raw, &stacks); err != nil {
		t.Fatal(err)
	}
	if _, err := parseOrderedWith(raw, &stacks); err != nil {
		t.Fatal(err)
	}
	for i, m := range stacks.members[:cap(stacks.members)] {
		if m != (member{}) {
			t.Fatalf("members[%d] = %v after the parse", i, m)
		}
	}
	for i, e := range stacks.elems[:cap(stacks.elems)] {
		if e != nil {
			t.Fatalf("elems[%d] = %v after the parse", i, e)
		}
	}
	if buf := stacks.buf[:cap(stacks.buf)]; bytes.ContainsFunc(buf, func(r rune) bool { return r != 0 }) {
		t.Fatalf("buf holds %q after the parse", buf)
	}
}

// A signature header of one huge v1 part is refused without growing the scratch kept for the
// next message: the MACs are read from parts of their own size only.
func TestHugeSignatureLeavesScratchSmall(t *testing.T) {
	d := mustDecoder(t, Options{Secret: vectorSecret, VerifySignature: true})
	raw := []byte(`{"action":"a","context":{"runId":"r"},"headers":{"X-Port-Signature":"v1,` +
		strings.Repeat("A", maxKeptBytes+4) + `","X-Port-Timestamp":"1"}}`)
	s := &decodeScratch{stacks: newParseStacks()}
	if _, _, _, err := d.documentWith(s, raw, true); !errors.Is(err, ErrMalformedSignature) {
		t.Fatalf("documentWith: %v, want %v", err, ErrMalformedSignature)
	}
	if c := s.check; cap(c.sum) > maxKeptBytes || cap(c.macs) > maxKeptBytes || !s.small() {
		t.Fatalf("scratch grew: sum %d, macs %d bytes", cap(c.sum), cap(c.macs))
	}
}

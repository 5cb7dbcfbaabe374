package runmsg

import (
	"bytes"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/port-runner/port-runner/test/harness/vectors"
)

// fuzzSeeds are the vectors (Port's own shapes too), each also as JSON.stringify writes it
// (still validly signed: the body is the same), and messages around the signature headers.
func fuzzSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	for _, path := range vectorFiles(f) {
		seeds = append(seeds, readVector(f, filepath.Base(path)))
	}
	ports, _ := filepath.Glob(filepath.Join(vectors.PortDir(), "*.json"))
	for _, path := range ports {
		seeds = append(seeds, readPortVector(f, filepath.Base(path)))
	}
	for _, raw := range seeds {
		if v, err := parseOrdered(raw); err == nil {
			seeds = append(seeds, appendJS(nil, v))
		}
	}
	const gitlab = `"payload":{"action":{"invocationMethod":{"type":"GITLAB"}}}`
	for _, s := range append([]string{
		`{"headers":{},"action":"a","context":{"runId":"r"},` + gitlab + `}`,
		`{"action":"a","context":{"runId":"r"},` + gitlab + `}`,
		`{"action":"a","context":{"runId":"r"},"headers":{"a":1,"b":"\u001f\n"}}`,
		`{"action":"a","headers":{"x":"y"},"context":{"runId":"r"},"headers":{"z":[]}}`,
		`{"action":"a\/","context":{"runId":"r"},"headers":{"k":"\u00e9"}}`,
		`{"action":"a","context":{"runId":"r"},"headers":5}`, `[{"runId":"r"}]`, `{}`, ` {"a":1} `,
	}, sameActionSeeds...) {
		if signed, err := Sign(vectorSecret, vectorTimestamp, []byte(s)); err == nil {
			seeds = append(seeds, signed)
		}
		seeds = append(seeds, []byte(s))
	}
	return seeds
}

// parseValues must give what toValue made of the ordered tree, with the same errors; when it
// says the text is as JSON.stringify writes it, it must be (the signature is checked over
// it), and the headers it points at must be the root's.
func FuzzParseValuesAgreesWithOrderedTree(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	stacks := newParseStacks() // shared: what one parse leaves must not change the next
	var cache objectCache      // shared too: its action objects are those parsed before
	f.Fuzz(func(t *testing.T, raw []byte) {
		want, werr := parseOrdered(raw)
		pv, gerr := parseValuesCached(raw, &stacks, &cache)
		if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) {
			t.Fatalf("parse %q: ordered error %v, values error %v", raw, werr, gerr)
		}
		if werr != nil {
			return
		}
		if !reflect.DeepEqual(pv.value, toValue(want)) {
			t.Fatalf("parse %q:\n values %#v\n tree   %#v", raw, pv.value, toValue(want))
		}
		if js := appendJS(nil, want); pv.stringified && !bytes.Equal(raw[pv.span[0]:pv.span[1]], js) {
			t.Fatalf("%q is not what JSON.stringify writes: %q", raw[pv.span[0]:pv.span[1]], js)
		}
		if root, ok := want.(*object); ok {
			hv, present := root.get("headers")
			if present != (pv.headers != [2]int{}) {
				t.Fatalf("%q: headers present %v, span %v", raw, present, pv.headers)
			}
			if present {
				got, err := parseOrdered(raw[pv.headers[0]:pv.headers[1]])
				if err != nil || !reflect.DeepEqual(got, hv) {
					t.Fatalf("%q: headers at %v read %#v (%v), want %#v", raw, pv.headers, got, err, hv)
				}
			}
		}
	})
}

// Decoding by parseValues and matchesBody must give what the ordered tree and the body
// written again gave: the same message, document, signing time, and error. Each input is
// also tried signed (Sign writes it as JSON.stringify does: matchesBody reads its spans).
func FuzzDocumentAgreesWithOracle(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	now := func() time.Time { return time.Unix(vectorTimestamp+60, 0) }
	d := mustDecoder(f, Options{Secret: vectorSecret, VerifySignature: true, Now: now})
	f.Fuzz(func(t *testing.T, raw []byte) {
		check := func(raw []byte, verify bool) {
			msg, doc, signed, err := d.document(raw, verify)
			wmsg, wdoc, wsigned, werr := d.documentOracle(raw, verify)
			if (err == nil) != (werr == nil) || (err != nil && err.Error() != werr.Error()) {
				t.Fatalf("document(%q, verify %v): error %v, oracle %v", raw, verify, err, werr)
			}
			if !reflect.DeepEqual(msg, wmsg) || !reflect.DeepEqual(doc, wdoc) || !signed.Equal(wsigned) {
				t.Fatalf("document(%q, verify %v):\n %#v %#v %v\n oracle %#v %#v %v", raw, verify, msg, doc, signed, wmsg, wdoc, wsigned)
			}
		}
		check(raw, true)
		check(raw, false)
		if signed, err := Sign(vectorSecret, vectorTimestamp, raw); err == nil {
			check(signed, true)
		}
	})
}

// Port's messages arrive as JSON.stringify wrote them: their signature must be checked over
// spans of their text (a pretty-printed one is parsed again), and each decodes as before. A
// GitLab invocation's body lacks the headers: its own span rule.
func TestSignedVectorsVerifyOverSpans(t *testing.T) {
	shared := mustDecoder(t, Options{Secret: vectorSecret, VerifySignature: true})
	port := mustDecoder(t, Options{Secret: vectors.PortAgentSecret, VerifySignature: true})
	check := func(d *Decoder, name string, raw []byte) error {
		t.Helper()
		tree, err := parseOrdered(raw)
		if err != nil {
			t.Fatal(err)
		}
		stacks := newParseStacks()
		pv, err := parseValues(raw, &stacks)
		if err != nil {
			t.Fatal(err)
		}
		if compact := bytes.Equal(raw, appendJS(nil, tree)); pv.stringified != compact {
			t.Errorf("%s: read as stringified %v, JSON.stringify's own text %v", name, pv.stringified, compact)
		}
		msg, doc, signed, err := d.document(raw, true)
		wmsg, wdoc, wsigned, werr := d.documentOracle(raw, true)
		if !reflect.DeepEqual([]any{msg, doc, signed, err}, []any{wmsg, wdoc, wsigned, werr}) {
			t.Errorf("%s: document %v %v, oracle %v %v", name, signed, err, wsigned, werr)
		}
		return err
	}
	for _, path := range vectorFiles(t) {
		check(shared, filepath.Base(path), readVector(t, filepath.Base(path)))
	}
	for name, want := range map[string]error{
		"derived.gitlab_run.signed.json":                       nil,
		"derived.gitlab_run.signed_keeping_empty_headers.json": ErrSignatureMismatch,
		"port-agent.webhook_run.signed.json":                   nil,
	} {
		tree, err := parseOrdered(readPortVector(t, name))
		if err != nil {
			t.Fatal(err)
		}
		// Written as JSON.stringify writes it, the message still carries a valid signature.
		if err := check(port, name, appendJS(nil, tree)); !errors.Is(err, want) || (want == nil) != (err == nil) {
			t.Errorf("%s as JSON.stringify writes it: %v, want %v", name, err, want)
		}
	}
}

// Verifying a message as Port sends it costs the parse of its small headers object and no
// more: a second parse of the message, or a body written again, would cost dozens of
// allocations (a count, not a time: the same on a loaded machine). The scratch space is the
// test's: the pool may drop what it holds (under -race, at random).
func TestVerifyingOverSpansAllocatesLittle(t *testing.T) {
	d := mustDecoder(t, Options{Secret: vectorSecret, VerifySignature: true})
	s := &decodeScratch{stacks: newParseStacks()}
	for _, name := range []string{"create_microservice.signed.json", "deploy_microservice.signed.json", "v2-kafka-unicode.signed.json"} {
		raw := readVector(t, name)
		read := func(verify bool) func() {
			return func() {
				if _, _, _, err := d.documentWith(s, raw, verify); err != nil {
					t.Fatal(err)
				}
			}
		}
		verified, trusted := testing.AllocsPerRun(50, read(true)), testing.AllocsPerRun(50, read(false))
		if verified > trusted+6 {
			t.Errorf("%s: reading allocates %.0f times verified, %.0f trusted: want at most 6 more", name, verified, trusted)
		}
	}
}

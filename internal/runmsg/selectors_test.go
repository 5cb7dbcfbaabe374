package runmsg

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"
)

// jqFirst is what first gave before plain paths were read without jq: the selector run by
// gojq, with its own deadline.
func jqFirst(s *selector, doc any) (any, error) {
	return first(&deadline{}, &selector{code: s.code}, doc)
}

// The default selectors are plain paths, so a message of Port's shape runs no jq at all;
// anything more is left to jq.
func TestPlainPaths(t *testing.T) {
	for expr, plain := range map[string]bool{
		".context.runId": true, ".payload.action.identifier": true, ".a_1._B": true,
		".": false, ".[0].runId": false, ".a | .b": false, ". .a": false, ".a?": false,
		".a[]": false, `.["a"]`: false, ".a.b[0]": false, ".a.\"b\"": false, "..": false,
	} {
		s, err := newSelector(expr)
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		if got := s.path != nil; got != plain {
			t.Errorf("%s: plain path %v, want %v", expr, got, plain)
		}
	}
	d := mustDecoder(t, Options{})
	for _, s := range []*selector{d.runID, d.action, d.properties, d.entity, d.actionFallback} {
		if s.path == nil {
			t.Errorf("a default selector runs jq")
		}
	}
}

// A plain path read without jq gives what gojq gives: the same value, or gojq's own error
// where a step meets neither an object nor null.
func FuzzPlainPathAgreesWithJQ(f *testing.F) {
	for _, path := range vectorFiles(f) {
		f.Add(readVector(f, filepath.Base(path)), uint8(0))
	}
	for _, doc := range []string{`{}`, `null`, `[1]`, `"s"`, `{"context":null}`, `{"context":"x"}`,
		`{"context":{"runId":null}}`, `{"context":{"runId":[1,{"a":2}]}}`, `{"context":{"runId":1.5e3}}`,
		`{"payload":{"action":{"identifier":{"x":true}}}}`, `{"payload":{"action":7}}`, `{"a":{"b":{"c":false}}}`} {
		for i := range plainPathCases {
			f.Add([]byte(doc), uint8(i))
		}
	}
	sels := make([]*selector, len(plainPathCases))
	for i, expr := range plainPathCases {
		s, err := newSelector(expr)
		if err != nil || s.path == nil {
			f.Fatalf("%s: %v (plain %v)", expr, err, s != nil && s.path != nil)
		}
		sels[i] = s
	}
	f.Fuzz(func(t *testing.T, raw []byte, which uint8) {
		v, err := parseOrdered(raw)
		if err != nil {
			return
		}
		doc := toValue(v)
		s := sels[int(which)%len(sels)]
		got, gerr := first(&deadline{}, s, doc)
		want, werr := jqFirst(s, doc)
		if (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) {
			t.Fatalf("%q on %s: error %v, jq %v", s.path, raw, gerr, werr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q on %s: %#v, jq %#v", s.path, raw, got, want)
		}
	})
}

var plainPathCases = []string{".context.runId", ".payload.action.identifier", ".action", ".a.b.c", ".payload.properties"}

// The jq deadline starts only when a selector runs jq, and stop ends it.
func TestDeadlineIsLazy(t *testing.T) {
	d := &deadline{}
	d.stop() // nothing started: nothing to stop
	if d.ctx != nil {
		t.Fatal("a deadline started before jq ran")
	}
	ctx := d.get()
	if d.get() != ctx {
		t.Fatal("the selectors of one message got different deadlines")
	}
	d.stop()
	if ctx.Err() != context.Canceled {
		t.Fatalf("after stop: %v, want canceled", ctx.Err())
	}
}

package runmsg

import (
	"encoding/base64"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
)

// oracleVerify is verifyRoot over the oracle's parse: the signature verdict runmsg gave
// before the hand-written decoder.
func oracleVerify(secret string, raw []byte) error {
	v, err := parseOrderedOracle(raw)
	if err != nil {
		return err
	}
	root, ok := v.(*object)
	if !ok {
		return errors.New("not an object")
	}
	return verifyRoot(secret, root, len(raw))
}

// signatureVerdict names the class of a verification error, which is what callers see
// (errors.Is) besides nil.
func signatureVerdict(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrSignatureMismatch):
		return "mismatch"
	case errors.Is(err, ErrMalformedSignature):
		return "malformed"
	case errors.Is(err, ErrUnsigned):
		return "unsigned"
	}
	return "other"
}

// The hand-written decoder must accept exactly what encoding/json's Token path accepted,
// give the same tree (key order, repeated keys, number literals, U+FFFD and lone
// surrogates), the same signed bytes and the same signature verdict.
func FuzzParseOrderedAgreesWithOracle(f *testing.F) {
	for _, path := range vectorFiles(f) {
		f.Add(readVector(f, filepath.Base(path)))
	}
	for _, s := range []string{
		`{"a":1,"b":[true,false,null],"a":{"x":-0.5e+3}}`, `[]`, `{}`, ` [ 1 , 2 ] `, `[1,]`, `{"a":1,}`,
		`01`, `[01]`, `1.`, `-`, `1e`, `.5`, `truex`, `[truex]`, `nul`, `1 2`, `{}{}`, `"\u00e9\ud83d\ude00"`,
		`{"k\udbff":"\ud800x\udc00","\ufffd":1}`, `"\ud800\u0041"`, `"\uD83D\uDE00"`, "\"\xff\xed\xa0\x80\"",
		"\"a\x01\"", `"\x"`, `"\u12"`, `{"a" 1}`, `{1:2}`, "\ufeff{}", `[[[[]]]]`, `"\/\b\f\n\r\t\"\\"`,
	} {
		f.Add([]byte(s))
	}
	f.Add(signText("1764429600", `{"action":"a","context":{"runId":"r"},"payload":{"s":"x\ud800"}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		want, werr := parseOrderedOracle(raw)
		got, gerr := parseOrdered(raw)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("parse %q: oracle error %v, new error %v", raw, werr, gerr)
		}
		if werr != nil {
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("parse %q:\n new    %#v\n oracle %#v", raw, got, want)
		}
		if g, w := string(appendJS(nil, got)), string(appendJS(nil, want)); g != w {
			t.Fatalf("JSON.stringify of %q:\n new    %s\n oracle %s", raw, g, w)
		}
		if g, w := signatureVerdict(Verify(vectorSecret, raw)), signatureVerdict(oracleVerify(vectorSecret, raw)); g != w {
			t.Fatalf("signature verdict of %q: new %s, oracle %s", raw, g, w)
		}
		// A message Port signs (over the oracle's reading) verifies with the new one.
		if root, ok := want.(*object); ok {
			hv, _ := root.get("headers")
			if h, ok := hv.(*object); ok || hv == nil {
				if h == nil {
					h = newObject()
				}
				signed := root.with("headers", h.with(HeaderSignature, "v1,"+macBase64(vectorSecret, "7", signedBody(root, h))).with(HeaderTimestamp, "7"))
				bytes := appendJS(nil, signed)
				if g, w := signatureVerdict(Verify(vectorSecret, bytes)), signatureVerdict(oracleVerify(vectorSecret, bytes)); g != w || w != "ok" {
					t.Fatalf("signed %q: new %s, oracle %s", bytes, g, w)
				}
			}
		}
	})
}

func macBase64(secret, ts string, body []byte) string {
	return base64.StdEncoding.EncodeToString(computeMAC(secret, ts, body))
}

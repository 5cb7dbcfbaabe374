package runmsg

import (
	"fmt"
	"time"
)

// documentOracle is Decoder.document as it was before parseValues and matchesBody: the
// ordered tree for every message, its signature checked over the body written again, and
// toValue for the values. FuzzDocumentAgreesWithOracle compares the two.
func (d *Decoder) documentOracle(raw []byte, verify bool) (message, doc any, signed time.Time, err error) {
	v, err := parseOrdered(raw)
	if err != nil {
		return nil, nil, signed, skip(ReasonInvalid, fmt.Errorf("not JSON: %w", err))
	}
	root, isObject := v.(*object)
	if _, isArray := v.([]any); !isObject && !isArray {
		return nil, nil, signed, skip(ReasonInvalid, fmt.Errorf("message is %s, not an object or array", kindOf(v)))
	}
	if isObject {
		if err := forAnAgent(toValue(root).(map[string]any)); err != nil {
			return nil, nil, signed, skip(ReasonIgnored, err)
		}
	}
	if verify {
		if !isObject {
			return nil, nil, signed, skip(ReasonBadSignature, fmt.Errorf("verify signature: %w: an array payload has no headers", ErrUnsigned))
		}
		if err := verifyRoot(d.secret, root, len(raw)); err != nil {
			return nil, nil, signed, skip(ReasonBadSignature, fmt.Errorf("verify signature: %w", err))
		}
		hv, _ := root.get("headers")
		h, _ := hv.(*object)
		if signed, err = signedAt(h, d.now()); err != nil {
			return nil, nil, signed, skip(ReasonBadSignature, fmt.Errorf("verify signature: %w", err))
		}
	}
	if !isObject {
		arr := toValue(v)
		return arr, arr, signed, nil
	}
	stripped := stripSignature(root)
	if verify && InvocationType(toValue(root)) == InvocationGitLab {
		stripped = stripped.without("headers") // the signature does not cover them
	}
	msg := make(map[string]any, len(stripped.members))
	body := make(map[string]any, len(stripped.members))
	for _, m := range stripped.members {
		v := toValue(m.val)
		msg[m.key] = v
		if m.key != "headers" {
			body[m.key] = v
		}
	}
	// The seed's DAY-2 example wraps the whole run in an outer "payload".
	if _, ok := body["context"]; !ok {
		if inner, ok := body["payload"].(map[string]any); ok {
			if _, ok := inner["context"]; ok {
				body = inner
			}
		}
	}
	return msg, body, signed, nil
}

// stripSignature is the message the command sees: the signature is transport,
// not content, and the command has no use for it.
func stripSignature(root *object) *object {
	hv, _ := root.get("headers")
	h, ok := hv.(*object)
	if !ok {
		return root
	}
	return root.with("headers", h.without(HeaderSignature, HeaderTimestamp))
}

// document is read's message, document, signing time and error, which the oracle gives.
func (d *Decoder) document(raw []byte, verify bool) (message, doc any, signed time.Time, err error) {
	m, err := d.read(raw, verify)
	return m.message, m.doc, m.signed, err
}

// documentWith is document with s for its scratch space.
func (d *Decoder) documentWith(s *decodeScratch, raw []byte, verify bool) (message, doc any, signed time.Time, err error) {
	m, err := d.readWith(s, raw, verify)
	return m.message, m.doc, m.signed, err
}

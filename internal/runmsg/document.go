package runmsg

import (
	"fmt"
	"maps"
	"time"
)

// decodeScratch is what decoding one message may reuse for the next: a Decoder keeps a pool
// of them, one per goroutine decoding at a time.
type decodeScratch struct {
	stacks parseStacks
	check  *signatureCheck // made on the first verification
}

// readMessage is a message read: as the command sees it (no signature), the document the
// selectors read (the run itself, unwrapped from the seed's DAY-2 envelope), when it was
// signed, and its "action" object from the Decoder's cache (nil: none).
type readMessage struct {
	message, doc any
	signed       time.Time
	action       *cachedObject
}

// read parses a message. A v2 custom payload may be an array; it cannot carry headers, so it
// is unsigned.
func (d *Decoder) read(raw []byte, verify bool) (readMessage, error) {
	s, _ := d.scratch.Get().(*decodeScratch)
	if s == nil {
		s = &decodeScratch{stacks: newParseStacks()}
	}
	defer d.release(s)
	return d.readWith(s, raw, verify)
}

// Past these sizes a scratch is dropped rather than kept for the next message, as
// encoding/json and fmt drop their large buffers: one huge message must not leave every
// later one a large scratch to carry.
const (
	maxKeptStack = 1024     // members or elements
	maxKeptBytes = 64 << 10 // an escaped string's or a headers object's text
)

// release keeps s for the next message unless a large message grew it.
func (d *Decoder) release(s *decodeScratch) {
	if s.small() {
		d.scratch.Put(s)
	}
}

// small reports whether s is no larger than a scratch worth keeping.
func (s *decodeScratch) small() bool {
	st, c := s.stacks, s.check
	if cap(st.members) > maxKeptStack || cap(st.elems) > maxKeptStack || cap(st.buf) > maxKeptBytes {
		return false
	}
	return c == nil || cap(c.body) <= maxKeptBytes && cap(c.macs) <= maxKeptBytes
}

// readWith is read with s for its scratch space.
func (d *Decoder) readWith(s *decodeScratch, raw []byte, verify bool) (m readMessage, err error) {
	pv, err := parseValuesCached(raw, &s.stacks, &d.actions)
	if err != nil {
		return m, skip(ReasonInvalid, fmt.Errorf("not JSON: %w", err))
	}
	root, isObject := pv.value.(map[string]any)
	if _, isArray := pv.value.([]any); !isObject && !isArray {
		return m, skip(ReasonInvalid, fmt.Errorf("message is %s, not an object or array", kindOf(pv.value)))
	}
	if isObject {
		if err := forAnAgent(root); err != nil {
			return m, skip(ReasonIgnored, err)
		}
	}
	if verify {
		if !isObject {
			return m, skip(ReasonBadSignature, fmt.Errorf("verify signature: %w: an array payload has no headers", ErrUnsigned))
		}
		if m.signed, err = d.verified(raw, &pv, s); err != nil {
			return m, skip(ReasonBadSignature, fmt.Errorf("verify signature: %w", err))
		}
	}
	m.action = pv.cached
	if !isObject {
		m.message, m.doc = pv.value, pv.value
		return m, nil
	}
	// A GitLab invocation's signature leaves headers out (README "Which invocation method"):
	// when it is checked, nothing of them reaches the command, which sees what was signed.
	msg, body := splitHeaders(root, verify && InvocationType(root) == InvocationGitLab)
	// The seed's DAY-2 example wraps the whole run in an outer "payload".
	if _, ok := body["context"]; !ok {
		if inner, ok := body["payload"].(map[string]any); ok {
			if _, ok := inner["context"]; ok {
				body = inner
			}
		}
	}
	m.message, m.doc = msg, body
	return m, nil
}

// splitHeaders returns the message the command sees, root without its signature headers (the
// signature is transport, not content, and the command has no use for it), or without any
// headers when unsignedHeaders, and the body the selectors read, root without its headers.
// root is the message's own: it is changed.
func splitHeaders(root map[string]any, unsignedHeaders bool) (msg, body map[string]any) {
	hv, ok := root["headers"]
	if !ok {
		return root, root
	}
	if unsignedHeaders {
		delete(root, "headers")
		return root, root
	}
	if h, ok := hv.(map[string]any); ok {
		delete(h, HeaderSignature)
		delete(h, HeaderTimestamp)
	}
	body = maps.Clone(root)
	delete(body, "headers")
	return root, body
}

// verified checks a message's signature and returns when Port signed it. A message as
// JSON.stringify wrote it, which is how Port sends one, is checked over spans of its text;
// any other (pretty-printed, say) is parsed again into the ordered tree, whose body is
// written as Port wrote it (appendSignedBody says what the body is). Either way only the
// headers object is read as the ordered tree to find the signature, so that an unsigned
// message costs no second parse.
func (d *Decoder) verified(raw []byte, pv *parsedValues, s *decodeScratch) (time.Time, error) {
	if s.check == nil {
		s.check = newSignatureCheck(d.secret)
	}
	c := s.check
	var hv any
	_, present := pv.value.(map[string]any)["headers"]
	if present {
		var err error
		if hv, err = pv.headersTree(raw, &s.stacks); err != nil {
			return time.Time{}, err // it was read as a part of raw: it cannot fail
		}
	}
	h, ts, err := c.headers(hv, present)
	if err != nil {
		return time.Time{}, err
	}
	if err := s.matchesBody(raw, pv, h, ts); err != nil {
		return time.Time{}, err
	}
	return signedAt(h, d.now())
}

// matchesBody checks the MAC of the body of raw, whose headers object is h, signed at ts.
func (s *decodeScratch) matchesBody(raw []byte, pv *parsedValues, h *object, ts string) error {
	c := s.check
	if !pv.stringified {
		v, err := parseOrderedWith(raw, &s.stacks)
		if err != nil {
			return err // parseValues read it: it cannot fail
		}
		return c.matches(ts, appendSignedBody(make([]byte, 0, len(raw)), v.(*object), h))
	}
	// The body is raw less the signature headers: the spans of raw around the headers object
	// go into the MAC as they are.
	before, after := raw[pv.span[0]:pv.headers[0]], raw[pv.headers[1]:pv.span[1]]
	if InvocationType(pv.value) == InvocationGitLab {
		// The body lacks the "headers" member, and the comma that set it apart.
		before = before[:len(before)-len(`"headers":`)]
		switch {
		case before[len(before)-1] == ',':
			before = before[:len(before)-1]
		case after[0] == ',':
			after = after[1:]
		}
		return c.matches(ts, before, after)
	}
	c.body, _ = appendOrderedObject(c.body[:0], h, jsonStringify, HeaderSignature, HeaderTimestamp)
	return c.matches(ts, before, c.body, after)
}

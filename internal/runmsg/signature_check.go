package runmsg

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash"
	"slices"
	"strings"
)

// signatureCheck checks signatures under one secret. It keeps its HMAC and buffers for the
// next message, so one goroutine at a time uses it.
type signatureCheck struct {
	mac  hash.Hash // keyed with the secret
	macs []byte    // the MACs of the signature header read last, sha256.Size bytes each
	sum  []byte
	body []byte // scratch for a signed headers object
}

func newSignatureCheck(secret string) *signatureCheck {
	return &signatureCheck{mac: hmac.New(sha256.New, []byte(secret))}
}

// headers reads a message's signature headers: hv is the value of its "headers", if present.
// It returns the headers object and the timestamp's text, and keeps the MACs for matches.
func (c *signatureCheck) headers(hv any, present bool) (h *object, ts string, err error) {
	if !present {
		return nil, "", fmt.Errorf("%w: no headers", ErrUnsigned)
	}
	h, ok := hv.(*object)
	if !ok {
		return nil, "", fmt.Errorf("%w: headers is %s, not an object", ErrMalformedSignature, kindOf(hv))
	}
	sv, ok := h.get(HeaderSignature)
	if !ok {
		return nil, "", fmt.Errorf("%w: no headers.%s", ErrUnsigned, HeaderSignature)
	}
	sig, ok := sv.(string)
	if !ok {
		return nil, "", fmt.Errorf("%w: headers.%s is %s, not a string", ErrMalformedSignature, HeaderSignature, kindOf(sv))
	}
	tv, ok := h.get(HeaderTimestamp)
	if !ok {
		return nil, "", fmt.Errorf("%w: no headers.%s", ErrMalformedSignature, HeaderTimestamp)
	}
	if ts, err = timestampText(tv); err != nil {
		return nil, "", err
	}
	if err = c.readMACs(sig); err != nil {
		return nil, "", err
	}
	return h, ts, nil
}

// matches checks that one of the MACs headers read is that of ts "." and the body, which is
// parts one after the other.
func (c *signatureCheck) matches(ts string, parts ...[]byte) error {
	c.mac.Reset()
	c.sum = append(append(c.sum[:0], ts...), '.')
	c.mac.Write(c.sum)
	for _, b := range parts {
		c.mac.Write(b)
	}
	c.sum = c.mac.Sum(c.sum[:0])
	for m := c.macs; len(m) >= sha256.Size; m = m[sha256.Size:] {
		if hmac.Equal(m[:sha256.Size], c.sum) {
			return nil
		}
	}
	return ErrSignatureMismatch
}

// macBase64Len is the length of a MAC in padded base64, as a v1 part holds it.
var macBase64Len = base64.StdEncoding.EncodedLen(sha256.Size)

var errMalformedMAC = fmt.Errorf("%w: headers.%s is not v1,<base64 HMAC-SHA256>", ErrMalformedSignature, HeaderSignature)

// readMACs keeps the MACs of sig: "v1,<base64>", or several of them separated by spaces, as
// webhook schemes of this family do during key rotation.
func (c *signatureCheck) readMACs(sig string) error {
	c.macs = c.macs[:0]
	for part := range strings.FieldsSeq(sig) {
		version, b64, ok := strings.Cut(part, ",")
		if !ok || version != "v1" {
			continue
		}
		// Only a part of a MAC's own length is copied: the scratch is kept for the next message
		// (decodeScratch.small), and a long one is malformed whatever it holds.
		if len(b64) != macBase64Len {
			return errMalformedMAC
		}
		c.sum = append(c.sum[:0], b64...) // base64 decodes bytes: a copy, without an allocation
		n, size := len(c.macs), base64.StdEncoding.DecodedLen(len(b64))
		c.macs = slices.Grow(c.macs, size)
		got, err := base64.StdEncoding.Decode(c.macs[n:n+size], c.sum)
		if err != nil || got != sha256.Size {
			return errMalformedMAC
		}
		c.macs = c.macs[:n+got]
	}
	if len(c.macs) == 0 {
		return fmt.Errorf("%w: headers.%s has no v1 signature", ErrMalformedSignature, HeaderSignature)
	}
	return nil
}

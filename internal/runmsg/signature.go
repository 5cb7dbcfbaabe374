package runmsg

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/port-runner/port-runner/internal/echo"
)

// Header keys inside the message's top-level "headers" object.
const (
	HeaderSignature = "X-Port-Signature"
	HeaderTimestamp = "X-Port-Timestamp"
)

// Causes of a failed verification, for errors.Is (logs and metrics may want
// to tell an unsigned message from a forged one).
var (
	ErrUnsigned           = errors.New("message is not signed")
	ErrMalformedSignature = errors.New("malformed signature")
	ErrSignatureMismatch  = errors.New("signature does not match")
)

// Sign returns the message with headers["X-Port-Signature"] and
// headers["X-Port-Timestamp"] set (added to an existing "headers" object, or a
// new one appended as the last top-level key), the rest of the bytes'
// content/key order preserved, output compact. Used by the Port emulator to
// sign the runs it produces.
func Sign(secret string, timestamp int64, raw []byte) ([]byte, error) {
	if secret == "" {
		return nil, errors.New("sign: empty secret")
	}
	if timestamp < 0 {
		return nil, fmt.Errorf("sign: negative timestamp %d", timestamp)
	}
	root, err := parseRoot(raw)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	var h *object
	if hv, ok := root.get("headers"); ok {
		if h, ok = hv.(*object); !ok {
			return nil, fmt.Errorf("sign: headers is %s, not an object", kindOf(hv))
		}
	} else {
		h = newObject()
		root.set("headers", h)
	}
	ts := strconv.FormatInt(timestamp, 10)
	mac := computeMAC(secret, ts, signedBody(root, h))
	h.set(HeaderSignature, "v1,"+base64.StdEncoding.EncodeToString(mac))
	h.set(HeaderTimestamp, json.Number(ts))
	return appendJS(nil, root), nil
}

// Verify checks the signature of a raw message; errors say what is wrong
// (missing header, malformed, mismatch) and wrap ErrUnsigned,
// ErrMalformedSignature or ErrSignatureMismatch.
func Verify(secret string, raw []byte) error {
	root, err := parseRoot(raw)
	if err != nil {
		return err
	}
	return verifyRoot(secret, root, len(raw))
}

func parseRoot(raw []byte) (*object, error) {
	v, err := parseOrdered(raw)
	if err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	root, ok := v.(*object)
	if !ok {
		return nil, fmt.Errorf("message is %s, not an object", kindOf(v))
	}
	return root, nil
}

// verifyRoot checks root's signature; size is the message's length, about what the signed
// body takes, so that it is written without growing.
func verifyRoot(secret string, root *object, size int) error {
	if secret == "" {
		// An empty HMAC key is a key anyone can use.
		return errors.New("no secret to verify with")
	}
	c := newSignatureCheck(secret)
	hv, ok := root.get("headers")
	h, ts, err := c.headers(hv, ok)
	if err != nil {
		return err
	}
	return c.matches(ts, appendSignedBody(make([]byte, 0, size), root, h))
}

// timestampText returns the decimal text Port put before the body; JavaScript
// renders an integer number and a numeric string the same way.
func timestampText(v any) (string, error) {
	var s string
	switch v := v.(type) {
	case json.Number:
		s = string(v)
	case string:
		s = v
	default:
		return "", fmt.Errorf("%w: headers.%s is %s", ErrMalformedSignature, HeaderTimestamp, kindOf(v))
	}
	if s == "" || len(s) > 20 || strings.Trim(s, "0123456789") != "" {
		return "", fmt.Errorf("%w: headers.%s %s is not an integer", ErrMalformedSignature, HeaderTimestamp, echo.Quote(s))
	}
	return s, nil
}

// signedBody is the message as Port signed it: the headers object h (the
// root's "headers") without the two signature keys, everything else as is; for a GitLab
// invocation, the message without its "headers" object at all (Port's own agent,
// port-agent's validate_incoming_signature, checks it so).
func signedBody(root, h *object) []byte { return appendSignedBody(nil, root, h) }

func appendSignedBody(b []byte, root, h *object) []byte {
	if InvocationType(root) == InvocationGitLab {
		return appendJS(b, root.without("headers"))
	}
	return appendJS(b, root.with("headers", h.without(HeaderSignature, HeaderTimestamp)))
}

// Invocation methods (payload.action.invocationMethod.type) whose runs Port hands to an agent.
const (
	InvocationKafka   = "KAFKA"
	InvocationWebhook = "WEBHOOK"
	InvocationGitLab  = "GITLAB"
)

// InvocationType is the message's payload.action.invocationMethod.type, where Port's own
// agent reads it ("" when absent). It takes the parsed message (*object) or a decoded one.
func InvocationType(msg any) string {
	s, _ := Lookup(msg, "payload", "action", "invocationMethod", "type").(string)
	return s
}

func computeMAC(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

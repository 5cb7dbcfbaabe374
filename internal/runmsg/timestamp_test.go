package runmsg

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// signText signs body (no headers of its own) with ts as its JSON text (a number or a
// string), which Sign cannot do for timestamps outside int64.
func signText(ts, body string) []byte {
	mac := computeMAC(vectorSecret, strings.Trim(ts, `"`), []byte(body[:len(body)-1]+`,"headers":{}}`))
	return fmt.Appendf(nil, `%s,"headers":{"X-Port-Signature":"v1,%s","X-Port-Timestamp":%s}}`,
		body[:len(body)-1], base64.StdEncoding.EncodeToString(mac), ts)
}

// TestDecodeTimestampRules: a signed message's timestamp is exposed; one more than 5
// minutes ahead, zero or absurd is rejected; an old one decodes (the agent asks Port).
func TestDecodeTimestampRules(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	d := mustDecoder(t, Options{Secret: vectorSecret, VerifySignature: true, Now: func() time.Time { return now }})
	const body = `{"action":"a","context":{"runId":"r_1"}}`
	sign := func(ts int64) []byte {
		b, err := Sign(vectorSecret, ts, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for name, c := range map[string]struct {
		raw  []byte
		want time.Time // zero: rejected
	}{
		"now":            {sign(now.Unix()), now},
		"2001":           {sign(time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC).Unix()), time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)},
		"4 minutes on":   {sign(now.Add(4 * time.Minute).Unix()), now.Add(4 * time.Minute)},
		"an hour on":     {sign(now.Add(time.Hour).Unix()), time.Time{}},
		"milliseconds":   {sign(now.UnixMilli()), time.Time{}},
		"zero":           {sign(0), time.Time{}},
		"past int64":     {signText("99999999999999999999", body), time.Time{}},
		"max int64":      {signText("9223372036854775807", body), time.Time{}},
		"string ts zero": {signText(`"0"`, body), time.Time{}},
	} {
		run, err := d.Decode(c.raw)
		if c.want.IsZero() {
			var se *SkipError
			if err == nil || !errors.As(err, &se) || se.Reason != ReasonBadSignature || !errors.Is(err, ErrBadTimestamp) {
				t.Errorf("%s: Decode = %+v, %v; want a bad_signature skip for the timestamp", name, run, err)
			}
			continue
		}
		if err != nil || !run.SignedAt.Equal(c.want) {
			t.Errorf("%s: Decode = SignedAt %v, %v; want %v", name, run.SignedAt, err, c.want)
		}
	}
	// Without verification nothing is trusted, so no timestamp is exposed.
	trusting := mustDecoder(t, Options{Now: func() time.Time { return now }})
	if run, err := trusting.Decode(sign(0)); err != nil || !run.SignedAt.IsZero() {
		t.Errorf("unverified: SignedAt %v, %v; want zero, nil", run.SignedAt, err)
	}
}
